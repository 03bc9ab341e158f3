/** @module @deadbolt/node-redis: deadbolt on a node-redis client. */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  clientKeyPrefix,
  type OwnedSubscriber,
  type RedisBackendOptions,
  RedisBackend,
  resolveRedisBackendOptions,
} from '@deadbolt/redis-backend';

/** Keys and arguments as node-redis takes them for `EVAL`/`EVALSHA`. */
export interface NodeRedisEvalOptions {
  keys: string[];
  arguments: string[];
}

/** The slice of a node-redis (5 or 6) client this backend uses. */
export interface NodeRedisClient {
  evalSha(sha: string, options: NodeRedisEvalOptions): Promise<unknown>;
  eval(source: string, options: NodeRedisEvalOptions): Promise<unknown>;
  duplicate(): NodeRedisSubscriberClient;
  /** Read for node-redis 6's `keyPrefix` (5 has none). */
  readonly options?: unknown;
}

/** The slice of a duplicated node-redis connection used as the subscriber. */
export interface NodeRedisSubscriberClient {
  connect(): Promise<unknown>;
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  readonly isOpen: boolean;
  destroy(): unknown;
}

/** Options of {@link NodeRedisBackend}. */
export type NodeRedisBackendOptions = RedisBackendOptions;

/**
 * deadbolt on your node-redis 5 or 6 client (`createClient()`, connected): the shared Lua scripts
 * for leases and fences, and one dedicated subscriber connection (a `duplicate()` of your client,
 * connected when the first waiter needs it) for release wake-ups. `close()` closes that
 * subscriber only, never your client.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * const redis = await createClient({ url: process.env.REDIS_URL }).connect();
 * const locks = new LockManager({ backend: new NodeRedisBackend(redis) });
 * ```
 */
export class NodeRedisBackend extends RedisBackend {
  /**
   * @param client - a node-redis client from `createClient()` (for a cluster, use `@deadbolt/cluster`)
   * @param options - `prefix` namespaces every key and channel
   */
  constructor(client: NodeRedisClient, options?: NodeRedisBackendOptions) {
    assertNodeRedisClient(client);
    const run =
      (command: 'evalSha' | 'eval') =>
      (script: string, keys: readonly string[], args: readonly string[]) =>
        client[command](script, { keys: [...keys], arguments: [...args] });
    super(
      {
        name: 'node-redis',
        transport: { evalsha: run('evalSha'), eval: run('eval') },
        openSubscriber: async () =>
          openSubscriber(client.duplicate(), clientKeyPrefix(client.options)),
      },
      resolveRedisBackendOptions(options),
    );
  }
}

function openSubscriber(connection: NodeRedisSubscriberClient, keyPrefix: string): OwnedSubscriber {
  // Without a listener node-redis would crash the process on a connection error; waiters see
  // failures as failed commands and the manager's backoff keeps them going.
  connection.on('error', () => undefined);
  let connecting: Promise<unknown> | undefined;
  // Commands wait for the connection. One that closed for good (its `reconnectStrategy` gave up)
  // is connected again when a waiter needs it; node-redis then restores its subscriptions itself.
  // close() waits for none of this, so it never hangs on a server that is down.
  const connected = (): Promise<unknown> => {
    if (connecting === undefined || !connection.isOpen) {
      connecting = connection.connect();
      connecting.catch(() => undefined);
    }
    return connecting;
  };
  connected();
  // node-redis 6 adds `keyPrefix` to the KEYS of EVALSHA, the release channel among them, but not
  // to the channel of SUBSCRIBE: without it here, releases would publish where nobody listens.
  return {
    subscribe: async (channel, onMessage) => {
      await connected();
      await connection.subscribe(keyPrefix + channel, (message) => onMessage(String(message)));
    },
    unsubscribe: async (channel) => {
      // A connection that is not open has nothing to undo.
      if (!connection.isOpen) return;
      await connecting;
      await connection.unsubscribe(keyPrefix + channel);
    },
    close: async () => {
      if (connection.isOpen) connection.destroy();
    },
  };
}

function assertNodeRedisClient(client: unknown): asserts client is NodeRedisClient {
  const candidate = client as Record<string, unknown> | null;
  if (typeof candidate !== 'object' || candidate === null) {
    throw new InvalidArgumentError('client', 'expected a node-redis client (createClient())');
  }
  if ('masters' in candidate && 'slots' in candidate) {
    throw new InvalidArgumentError(
      'client',
      'is a node-redis cluster; use ClusterBackend from @deadbolt/cluster',
    );
  }
  const isNodeRedis =
    ['evalSha', 'eval', 'duplicate', 'sendCommand'].every(
      (method) => typeof candidate[method] === 'function',
    ) && typeof candidate.defineCommand !== 'function';
  if (!isNodeRedis) {
    let hint = '';
    if (typeof candidate.defineCommand === 'function') {
      hint = ' (this looks like ioredis: use IoredisBackend from @deadbolt/ioredis)';
    } else if (typeof candidate.evalSha === 'function') {
      // A client pool (createClientPool()) has the commands but no duplicate() for a subscriber.
      hint = ' (a client pool cannot open a subscriber: pass a client from createClient())';
    }
    throw new InvalidArgumentError(
      'client',
      `expected a node-redis client (createClient())${hint}`,
    );
  }
}
