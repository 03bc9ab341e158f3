/** @module @deadbolt/testing: the backend conformance suite and a harness for real redis-server processes. */
// conformance exports (explicit names from ./conformance/index.js) go here

export type {
  RedisProvider,
  RedisProviderFacts,
  RedisServer,
  StartRedisOptions,
} from './harness/redis.js';
export {
  chooseRedisProvider,
  findRedisServerBinary,
  isDockerAvailable,
  startRedis,
  startRedisServers,
} from './harness/redis.js';
