/**
 * deadbolt on a node-redis client.
 *
 * @module @deadbolt/node-redis
 */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  type NodeRedisClient,
  nodeRedisConnection,
  RedisBackend,
  type RedisBackendOptions,
  resolveRedisBackendOptions,
} from '@deadbolt/redis-backend';

export type {
  NodeRedisClient,
  NodeRedisEvalOptions,
  NodeRedisSubscriber,
} from '@deadbolt/redis-backend';

/** Options of {@link NodeRedisBackend}. */
export type NodeRedisBackendOptions = RedisBackendOptions;

/**
 * deadbolt on your node-redis 5 or 6 client (`createClient()` or `createSentinel()`, connected):
 * the shared Lua scripts for leases and fences, and one dedicated subscriber (a `duplicate()` of
 * your client, connected when the first waiter needs it) for release wake-ups. `close()` closes
 * that subscriber only, never your client.
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
   * @param client - a node-redis client from `createClient()` or `createSentinel()` (for a
   *   cluster, use `@deadbolt/cluster`)
   * @param options - `prefix` namespaces every key and channel
   */
  constructor(client: NodeRedisClient, options?: NodeRedisBackendOptions) {
    assertNodeRedisClient(client);
    super(nodeRedisConnection(client), resolveRedisBackendOptions(options));
  }
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
