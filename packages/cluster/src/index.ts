/**
 * deadbolt on a Redis Cluster.
 *
 * @module @deadbolt/cluster
 */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  type IoredisClusterClient,
  ioredisClusterConnection,
  type NodeRedisClusterClient,
  nodeRedisClusterConnection,
  type PubSubMode,
  RedisBackend,
  type RedisBackendOptions,
  resolveRedisBackendOptions,
  takePubSubOption,
} from '@deadbolt/redis-backend';

export type {
  IoredisClusterClient,
  IoredisShardedSubscriber,
  NodeRedisClusterClient,
  NodeRedisShardedSubscriber,
} from '@deadbolt/redis-backend';

/** Options of {@link ClusterBackend}. */
export interface ClusterBackendOptions extends RedisBackendOptions {
  /**
   * How releases reach waiters: `'sharded'` uses `SPUBLISH`/`SSUBSCRIBE` (Redis 7+), which wakes
   * only the shard that owns the key, and falls back to classic pub/sub by itself on servers
   * without it; `'classic'` always uses `PUBLISH`/`SUBSCRIBE`, broadcast to every node.
   * @default 'sharded'
   */
  pubsub?: PubSubMode;
}

/**
 * deadbolt on a Redis Cluster, with the same Lua scripts as a single server: every key of one
 * lock carries one hash tag, so each script runs on the shard that owns the lock, and the client
 * follows `MOVED`/`ASK` and slot migrations. Waiters are woken through sharded pub/sub on a
 * duplicate of your cluster client, opened when the first waiter needs it; `close()` closes that
 * duplicate only.
 *
 * @example
 * ```ts
 * const cluster = new Cluster([{ host: '10.0.0.1', port: 6379 }]); // ioredis
 * const locks = new LockManager({ backend: new ClusterBackend(cluster) });
 * ```
 */
export class ClusterBackend extends RedisBackend {
  /**
   * @param client - an ioredis `Cluster`, or a connected node-redis `createCluster()` client
   * @param options - `prefix` namespaces every key and channel; `pubsub` picks sharded or classic
   */
  constructor(
    client: IoredisClusterClient | NodeRedisClusterClient,
    options?: ClusterBackendOptions,
  ) {
    const { pubsub, rest } = takePubSubOption(options);
    super(
      isIoredisCluster(client)
        ? ioredisClusterConnection(client, pubsub)
        : nodeRedisClusterConnection(assertNodeRedisCluster(client), pubsub),
      resolveRedisBackendOptions(rest),
    );
  }
}

function isIoredisCluster(client: unknown): client is IoredisClusterClient {
  const candidate = client as Record<string, unknown> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.nodes === 'function' &&
    typeof candidate.evalsha === 'function' &&
    typeof candidate.duplicate === 'function'
  );
}

function assertNodeRedisCluster(client: unknown): NodeRedisClusterClient {
  const candidate = client as Record<string, unknown> | null;
  const isCluster =
    typeof candidate === 'object' &&
    candidate !== null &&
    'masters' in candidate &&
    typeof candidate.evalSha === 'function' &&
    typeof candidate.duplicate === 'function';
  if (!isCluster) {
    throw new InvalidArgumentError(
      'client',
      'expected an ioredis Cluster or a node-redis createCluster() client (for a single server, use @deadbolt/ioredis or @deadbolt/node-redis)',
    );
  }
  return candidate as unknown as NodeRedisClusterClient;
}
