/**
 * The backend conformance suite every deadbolt backend passes, and the suite every Redis adapter
 * passes. They declare their tests with vitest (an optional peer dependency of this package):
 * import this entry from vitest test files only.
 *
 * @module @deadbolt/testing/conformance
 */

export type { BackendFeature, ConformanceContext, CountedBackend } from './conformance/context.js';
export { OverlapDetector } from './conformance/context.js';
export type { BackendConformanceOptions } from './conformance/index.js';
export { runBackendConformance } from './conformance/index.js';
export type { ForeignClient, RedisAdapterSuiteOptions } from './conformance/redis-adapter.js';
export { runRedisAdapterSuite } from './conformance/redis-adapter.js';
export type {
  IoredisModule,
  IoredisSentinelModule,
  IoredisTestClient,
  NodeRedisModule,
  NodeRedisSentinelModule,
  NodeRedisTestClient,
  RedisClientSettings,
  RedisTestClients,
} from './conformance/redis-clients.js';
export {
  ioredisClusterTestClients,
  ioredisSentinelTestClients,
  ioredisTestClients,
  nodeRedisClusterTestClients,
  nodeRedisSentinelTestClients,
  nodeRedisTestClients,
  parseSentinelUrl,
} from './conformance/redis-clients.js';
