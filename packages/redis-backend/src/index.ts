/**
 * The Redis backend every Redis adapter is glue for.
 *
 * @module @deadbolt/redis-backend
 */

export type { OwnedSubscriber, PublishCommand, RedisConnection } from './backend.js';
export { RedisBackend } from './backend.js';
export type { EvictionCheck } from './eviction.js';
export type {
  IoredisClient,
  IoredisClusterClient,
  IoredisClusterNode,
  IoredisConnectable,
  IoredisScripting,
  IoredisShardedSubscriber,
  IoredisSubscriber,
} from './ioredis.js';
export { ioredisClusterConnection, ioredisConnection } from './ioredis.js';
export type { RedisBackendOptions } from './keys.js';
export { clientKeyPrefix, hashTag, lockKey, resolveRedisBackendOptions } from './keys.js';
export type { LockServer } from './listing.js';
export type {
  NodeRedisClient,
  NodeRedisClusterClient,
  NodeRedisClusterMaster,
  NodeRedisEvalOptions,
  NodeRedisScripting,
  NodeRedisShardedSubscriber,
  NodeRedisSubscriber,
} from './node-redis.js';
export { nodeRedisClusterConnection, nodeRedisConnection } from './node-redis.js';
export type { PubSubMode, SubscriptionCommands } from './pubsub.js';
export { takePubSubOption, withClassicFallback } from './pubsub.js';
export type { ReleaseSubscriber, ReleaseWaitersOptions } from './release-waiters.js';
export { ReleaseWaiters } from './release-waiters.js';
export type { LuaScript, ScriptTransport } from './scripts.js';
export { runScript, scripts } from './scripts.js';
