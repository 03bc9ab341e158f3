/** @module @deadbolt/redis-scripts: the Lua, key schema and reply decoding every Redis adapter shares. */
export type { LockKeys, RedisBackendOptions } from './keys.js';
export { hashTag, lockKeys, resolveRedisBackendOptions } from './keys.js';
export type { PublishCommand, RedisLockScriptsOptions } from './lock-scripts.js';
export { RedisLockScripts } from './lock-scripts.js';
export type { ReleaseSubscriber } from './release-waiters.js';
export { ReleaseWaiters } from './release-waiters.js';
export type { LuaScript, ScriptTransport } from './scripts.js';
export { runScript, scripts } from './scripts.js';
