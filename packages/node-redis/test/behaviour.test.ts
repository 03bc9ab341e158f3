import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendError, LockManager } from '@deadbolt/core';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { createClient, ErrorReply } from 'redis';
import { createClient as createClientV5, ErrorReply as ErrorReplyV5 } from 'redis5';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeRedisBackend } from '../src/index.js';

/** Backoff so slow that only a pub/sub wake-up can serve a waiter within the test. */
const NO_POLLING = { backoff: { initialMs: 60_000, maxMs: 60_000 } };

/** What the tests set on a client, in the shape both majors accept. */
interface ClientOptions {
  url?: string;
  name?: string;
  RESP?: 2 | 3;
  socket?: { reconnectStrategy: false };
}
/** What cleanup needs of a client of either major. */
interface Client {
  readonly isOpen: boolean;
  destroy(): unknown;
}

let server: RedisServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(() => {
  for (const client of clients.splice(0)) if (client.isOpen) client.destroy();
});

const prefix = () => `t${randomUUID().slice(0, 8)}`;

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** Connections open on the server now under the client name `name` (a duplicate keeps it). */
async function connectionCount(name: string, type?: 'pubsub'): Promise<number> {
  const list = String(await server.call('CLIENT', 'LIST', ...(type ? ['TYPE', type] : [])));
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

async function channels(pattern: string): Promise<unknown[]> {
  return (await server.call('PUBSUB', 'CHANNELS', pattern)) as unknown[];
}

function request(key: string) {
  return { key, token: randomUUID(), ttlMs: 10_000, limit: 1, weight: 1 };
}

describe.each([
  { major: 6, create: (options: ClientOptions) => createClient(options), ErrorReply },
  {
    major: 5,
    create: (options: ClientOptions) => createClientV5(options),
    ErrorReply: ErrorReplyV5,
  },
])('NodeRedisBackend on node-redis $major', ({ create, ErrorReply: ReplyClass }) => {
  async function connect(options: ClientOptions = {}) {
    const client = create({ url: server.url, ...options });
    client.on('error', () => undefined);
    clients.push(client);
    await client.connect();
    return client;
  }

  it.each([2, 3] as const)(
    'wakes a waiter through pub/sub when the holder releases (RESP%i)',
    async (RESP) => {
      const namespace = prefix();
      const holderBackend = new NodeRedisBackend(await connect({ RESP }), { prefix: namespace });
      const waiterBackend = new NodeRedisBackend(await connect({ RESP }), { prefix: namespace });
      const holder = new LockManager({ backend: holderBackend });
      const waiter = new LockManager({ backend: waiterBackend, ...NO_POLLING });
      const held = await holder.acquire('report', { ttl: 60_000 });
      const waiting = waiter.acquire('report', { wait: 60_000 });
      await sleep(300);
      await held.release();
      // Backoff would retry after 30 s at the earliest; only the release message can be faster.
      const next = await Promise.race([waiting, sleep(15_000).then(() => 'no wake-up')]);
      expect(next).not.toBe('no wake-up');
      if (typeof next === 'string') return;
      expect(next.fence).toBeGreaterThan(held.fence);
      await next.release();
      await Promise.all([holderBackend.close(), waiterBackend.close()]);
    },
  );

  it('keeps one subscriber for 100 waiters on 25 keys, drops its subscriptions after the last waiter, and reuses it', async () => {
    const namespace = prefix();
    const backend = new NodeRedisBackend(await connect({ name: namespace }), {
      prefix: namespace,
    });
    const round = async () => {
      const controller = new AbortController();
      setMaxListeners(100, controller.signal);
      const waits = Array.from({ length: 100 }, (_, index) =>
        backend
          .waitForRelease({ key: `key ${index % 25}`, signal: controller.signal })
          .catch(() => undefined),
      );
      await eventually('25 channels are subscribed', async () => {
        return (await channels(`${namespace}:*`)).length === 25;
      });
      expect(await connectionCount(namespace, 'pubsub')).toBe(1);
      expect(await connectionCount(namespace)).toBe(2);
      controller.abort();
      await Promise.all(waits);
      await eventually('every channel is unsubscribed', async () => {
        return (await channels(`${namespace}:*`)).length === 0;
      });
      // The connection itself stays for the next waiter.
      expect(await connectionCount(namespace)).toBe(2);
    };
    await round();
    await round();
    await backend.close();
    await eventually('the subscriber is gone', async () => {
      return (await connectionCount(namespace)) === 1;
    });
  });

  it('close() rejects pending waiters and later calls with BackendError and leaves the client usable', async () => {
    const namespace = prefix();
    const client = await connect();
    const backend = new NodeRedisBackend(client, { prefix: namespace });
    const controller = new AbortController();
    // The first wait resolves as soon as its subscription is in place; the second one waits.
    await backend.waitForRelease({ key: 'k', signal: controller.signal });
    const pending = backend.waitForRelease({ key: 'k', signal: controller.signal });
    await sleep(50);
    await backend.close();
    const error = await pending.catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] \[node-redis\] /);
    await expect(backend.acquire(request('k'))).rejects.toBeInstanceOf(BackendError);
    await expect(
      backend.waitForRelease({ key: 'k', signal: controller.signal }),
    ).rejects.toBeInstanceOf(BackendError);
    await backend.close();
    expect(await client.ping()).toBe('PONG');
    const again = new NodeRedisBackend(client, { prefix: namespace });
    expect((await again.acquire(request('k'))).ok).toBe(true);
    await again.close();
  });

  it('wraps an error reply as BackendError with the node-redis error as cause', async () => {
    const namespace = prefix();
    await server.call('SET', `${namespace}:{k}`, 'not a hash');
    const backend = new NodeRedisBackend(await connect(), { prefix: namespace });
    const error = await backend.acquire(request('k')).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] \[node-redis\] .*WRONGTYPE/);
    expect((error as BackendError).cause).toBeInstanceOf(ReplyClass);
  });

  it('wraps a connection failure as BackendError with the node-redis error as cause', async () => {
    const client = create({
      url: `redis://127.0.0.1:${await closedPort()}`,
      socket: { reconnectStrategy: false },
    });
    client.on('error', () => undefined);
    await client.connect().catch(() => undefined);
    const locks = new LockManager({ backend: new NodeRedisBackend(client) });
    const error = await locks.acquire('k').catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] .*\[node-redis\]/);
    expect((error as BackendError).cause).toBeInstanceOf(Error);
  });
});

describe('NodeRedisBackend under the keyPrefix of a node-redis 6 client', () => {
  it('wakes a waiter through pub/sub when the holder releases', async () => {
    const namespace = prefix();
    const connectPrefixed = async () => {
      const client = createClient({ url: server.url, keyPrefix: 'app:' });
      client.on('error', () => undefined);
      clients.push(client);
      return client.connect();
    };
    const holderBackend = new NodeRedisBackend(await connectPrefixed(), { prefix: namespace });
    const waiterBackend = new NodeRedisBackend(await connectPrefixed(), { prefix: namespace });
    const giveUp = new AbortController();
    try {
      // The holder's lease outlasts the wait, so its retry hint cannot serve the waiter either.
      const held = await new LockManager({ backend: holderBackend }).acquire('report', {
        ttl: 120_000,
      });
      // Racing instead of queueing, so no renewal of a queue place asks again.
      const waiting = new LockManager({ backend: waiterBackend, ...NO_POLLING }).acquire('report', {
        wait: 60_000,
        fair: false,
        signal: giveUp.signal,
      });
      waiting.catch(() => undefined);
      // node-redis adds the keyPrefix to the script's KEYS: releases go to the prefixed name.
      await eventually('the waiter listens on the prefixed channel', async () => {
        const reply = (await server.call('PUBSUB', 'NUMSUB', `app:${namespace}:{report}`)) as [
          string,
          number,
        ];
        return reply[1] === 1;
      });
      await held.release();
      // Backoff would retry after 30 s at the earliest; only the release message can be faster.
      const next = await Promise.race([waiting, sleep(15_000).then(() => 'no wake-up')]);
      expect(next).not.toBe('no wake-up');
      if (typeof next === 'string') return;
      expect(next.fence).toBeGreaterThan(held.fence);
      await next.release();
    } finally {
      giveUp.abort();
      await Promise.all([holderBackend.close(), waiterBackend.close()]);
    }
  });
});

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
