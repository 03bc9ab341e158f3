/** @module @deadbolt/ioredis: deadbolt on an ioredis client. */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  type OwnedSubscriber,
  type RedisBackendOptions,
  RedisBackend,
  resolveRedisBackendOptions,
} from '@deadbolt/redis-backend';

/** The slice of an ioredis `Redis` client this backend uses. */
export interface IoredisClient {
  evalsha(sha: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(source: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  duplicate(): IoredisSubscriberClient;
}

/** The slice of a duplicated ioredis connection used as the subscriber. */
export interface IoredisSubscriberClient {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  readonly status: string;
  readonly options: { readonly keyPrefix?: string | undefined };
  connect(): Promise<unknown>;
  disconnect(): void;
}

/** Options of {@link IoredisBackend}. */
export type IoredisBackendOptions = RedisBackendOptions;

/**
 * deadbolt on your ioredis 5 client: the shared Lua scripts for leases and fences, and one
 * dedicated subscriber connection (a `duplicate()` of your client, opened when the first waiter
 * needs it) for release wake-ups. `close()` closes that subscriber only, never your client.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const locks = new LockManager({ backend: new IoredisBackend(new Redis(process.env.REDIS_URL)) });
 * ```
 */
export class IoredisBackend extends RedisBackend {
  /**
   * @param client - an ioredis `Redis` instance (for a Cluster, use `@deadbolt/cluster`)
   * @param options - `prefix` namespaces every key and channel
   */
  constructor(client: IoredisClient, options?: IoredisBackendOptions) {
    assertIoredisClient(client);
    const run =
      (command: 'evalsha' | 'eval') =>
      (script: string, keys: readonly string[], args: readonly string[]) =>
        client[command](script, keys.length, ...keys, ...args);
    super(
      {
        name: 'ioredis',
        transport: { evalsha: run('evalsha'), eval: run('eval') },
        openSubscriber: async () => openSubscriber(client.duplicate()),
      },
      resolveRedisBackendOptions(options),
    );
  }
}

function openSubscriber(connection: IoredisSubscriberClient): OwnedSubscriber {
  // ioredis adds `keyPrefix` to the KEYS of EVALSHA, the release channel among them, but not to
  // the channel of SUBSCRIBE: without it here, releases would publish where nobody listens.
  const keyPrefix = connection.options.keyPrefix ?? '';
  const listeners = new Map<string, (message: string) => void>();
  connection.on('message', (channel, message) => listeners.get(channel)?.(message));
  // Without a listener ioredis would print connection errors; waiters see them as failed commands.
  connection.on('error', () => undefined);
  let ready: Promise<void> | undefined;
  // SUBSCRIBE waits for 'ready': one sent during the startup check can leave the connection stuck
  // (ioredis#2037). An idle connection (the duplicate of a `lazyConnect` client) or one whose
  // `retryStrategy` gave up is connected first; ioredis then restores its subscriptions itself.
  // close() waits for none of this, so it never hangs on a server that is down.
  const whenReady = (): Promise<void> => {
    if (connection.status === 'ready') return Promise.resolve();
    if (connection.status === 'wait' || connection.status === 'end') {
      connection.connect().catch(() => undefined);
    }
    ready ??= new Promise((resolve) => {
      connection.once('ready', () => {
        ready = undefined;
        resolve();
      });
    });
    return ready;
  };
  return {
    subscribe: async (channel, onMessage) => {
      listeners.set(keyPrefix + channel, onMessage);
      await whenReady();
      await connection.subscribe(keyPrefix + channel);
    },
    unsubscribe: async (channel) => {
      listeners.delete(keyPrefix + channel);
      // A connection that is not open has nothing to undo.
      if (connection.status === 'wait' || connection.status === 'end') return;
      await whenReady();
      await connection.unsubscribe(keyPrefix + channel);
    },
    close: async () => {
      connection.disconnect();
    },
  };
}

function assertIoredisClient(client: unknown): asserts client is IoredisClient {
  const candidate = client as Record<string, unknown> | null;
  if (typeof candidate !== 'object' || candidate === null) {
    throw new InvalidArgumentError('client', 'expected an ioredis client (new Redis())');
  }
  if (typeof candidate.nodes === 'function') {
    throw new InvalidArgumentError(
      'client',
      'is an ioredis Cluster; use ClusterBackend from @deadbolt/cluster',
    );
  }
  const isIoredis = ['evalsha', 'eval', 'duplicate', 'defineCommand'].every(
    (method) => typeof candidate[method] === 'function',
  );
  if (!isIoredis) {
    const hint =
      typeof candidate.evalSha === 'function'
        ? ' (this looks like node-redis: use NodeRedisBackend from @deadbolt/node-redis)'
        : '';
    throw new InvalidArgumentError('client', `expected an ioredis client (new Redis())${hint}`);
  }
}
