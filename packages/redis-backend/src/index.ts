/** @module @deadbolt/redis-backend: the Redis backend every Redis adapter is glue for. */

export type { OwnedSubscriber, PublishCommand, RedisConnection } from './backend.js';
export { RedisBackend } from './backend.js';
export type { EvictionCheck } from './eviction.js';
export type { RedisBackendOptions } from './keys.js';
export { clientKeyPrefix, hashTag, lockKey, resolveRedisBackendOptions } from './keys.js';
export type { ReleaseSubscriber, ReleaseWaitersOptions } from './release-waiters.js';
export { ReleaseWaiters } from './release-waiters.js';
export type { LuaScript, ScriptTransport } from './scripts.js';
export { runScript, scripts } from './scripts.js';
