/**
 * A client process's clients and what they need, for each kind of backend: each client is a
 * LockManager on its own connection (over an {@link ObservedBackend}), and the process has one
 * more connection per server for the checks' own reads.
 */
import { LockManager, quorum } from '@deadbolt/core';
import { IoredisBackend, type IoredisClient } from '@deadbolt/ioredis';
import { MemoryBackend } from '@deadbolt/memory';
import { Redis, type RedisOptions } from 'ioredis';
import { FAIL_FAST } from '../redis-options.js';
import {
  type LeaseReader,
  MemoryLeaseReader,
  QuorumLeaseReader,
  RedisLeaseReader,
} from './lease-check.js';
import { ObservedBackend, type QueuedAttemptCheck } from './observed-backend.js';
import type { SchedulePlan } from './plan.js';
import type { Servers } from './protocol.js';

export interface Client {
  locks: LockManager;
  observed: ObservedBackend;
}

export interface World {
  clients: Client[];
  leases: LeaseReader;
  close(): Promise<void>;
}

/** The check around each queued attempt of `client`, given what reads the lock hash (Redis only). */
export type QueueCheck = (reader: RedisLeaseReader, client: number) => QueuedAttemptCheck;

/** Reconnect soon after an empty restart, so the schedule goes on while the fault lasts. */
const COMMANDS: RedisOptions = { retryStrategy: () => 50 };

export async function openWorld(
  plan: SchedulePlan,
  servers: Servers,
  queueCheck: QueueCheck,
): Promise<World> {
  const count = plan.clientsPerProcess;
  if (servers.kind === 'memory') {
    const memory = new MemoryBackend();
    const clients = Array.from({ length: count }, () => client(new ObservedBackend(memory)));
    return { clients, leases: new MemoryLeaseReader(memory), close: () => memory.close() };
  }
  const connections: Redis[] = [];
  const connect = (url: string, options: RedisOptions) => {
    const connection = new Redis(url, options);
    connection.on('error', () => undefined);
    connections.push(connection);
    return connection;
  };
  const close = async () => {
    for (const connection of connections) connection.disconnect();
  };
  if (servers.kind === 'redis') {
    const checker = await ready(connect(servers.url, FAIL_FAST));
    let reader: RedisLeaseReader | undefined;
    const clients = Array.from({ length: count }, (_, index) => {
      const direct = connect(servers.url, COMMANDS);
      const backend = new IoredisBackend(
        subscriberThrough(direct, () => connect(servers.subscriberUrl, COMMANDS)),
      );
      reader ??= new RedisLeaseReader(checker, (key) => backend.lockKey(key));
      const checkWith = reader;
      return client(new ObservedBackend(backend, queueCheck(checkWith, index)));
    });
    return { clients, leases: reader as RedisLeaseReader, close };
  }
  const checkers = await Promise.all(servers.urls.map((url) => ready(connect(url, FAIL_FAST))));
  // Fail-fast members refuse commands until connected: a client must not start before they are.
  const memberConnections = Array.from({ length: count }, () =>
    servers.urls.map((url) => connect(url, FAIL_FAST)),
  );
  await Promise.all(memberConnections.flat().map(ready));
  const clients = memberConnections.map((connections) =>
    client(new ObservedBackend(quorum(connections.map((each) => new IoredisBackend(each))))),
  );
  // Every member names the lock hash the same way: the default prefix and the key.
  const namer = new IoredisBackend(connect(servers.urls[0] as string, FAIL_FAST));
  const leases = new QuorumLeaseReader(
    checkers.map((checker) => new RedisLeaseReader(checker, (key) => namer.lockKey(key))),
  );
  return { clients, leases, close };
}

function client(observed: ObservedBackend): Client {
  return { locks: new LockManager({ backend: observed.backend }), observed };
}

function ready(connection: Redis): Promise<Redis> {
  if (connection.status === 'ready') return Promise.resolve(connection);
  return new Promise((resolve) => connection.once('ready', () => resolve(connection)));
}

/**
 * An ioredis client, duck-typed, whose scripts run on `direct` while the subscriber connection
 * that IoredisBackend opens with `duplicate()` is `openSubscriber()`'s, through the fault proxy:
 * message faults then hit release wake-ups and handoff grants, and nothing else.
 */
function subscriberThrough(direct: Redis, openSubscriber: () => Redis): IoredisClient {
  const client: IoredisClient & Pick<Redis, 'defineCommand'> = {
    evalsha: (sha, keys, ...rest) => direct.evalsha(sha, keys, ...rest),
    eval: (source, keys, ...rest) => direct.eval(source, keys, ...rest),
    // IoredisBackend checks for it to tell an ioredis client from others; it is never called.
    defineCommand: (...args) => direct.defineCommand(...args),
    duplicate: openSubscriber,
    options: direct.options,
    // The subscriber follows the client: closed when it ends.
    get status() {
      return direct.status;
    },
    on: (event, listener) => direct.on(event, listener),
    off: (event, listener) => direct.off(event, listener),
  };
  return client;
}
