/**
 * deadbolt on an ioredis client.
 *
 * @module @deadbolt/ioredis
 */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  type IoredisClient,
  ioredisConnection,
  RedisBackend,
  type RedisBackendOptions,
  resolveRedisBackendOptions,
} from '@deadbolt/redis-backend';

export type { IoredisClient, IoredisSubscriber } from '@deadbolt/redis-backend';

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
    super(ioredisConnection(client), resolveRedisBackendOptions(options));
  }
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
