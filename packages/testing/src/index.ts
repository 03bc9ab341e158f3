/**
 * The backend conformance suite and a harness for real redis-server processes (single, Sentinel, Cluster) and PostgreSQL databases.
 *
 * @module @deadbolt/testing
 */

// conformance exports: runBackendConformance, the suite every backend passes, and its helpers
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

// harness exports: real redis-server processes and PostgreSQL databases for tests
export type {
  RedisCluster,
  RedisClusterNode,
  StartRedisClusterOptions,
} from './harness/cluster.js';
export { startRedisCluster } from './harness/cluster.js';
export type {
  FaultProxy,
  FaultProxyTarget,
  MessageFaultCounts,
  MessageFaults,
  StartFaultProxyOptions,
} from './harness/fault-proxy.js';
export { startFaultProxy } from './harness/fault-proxy.js';
export type {
  PostgresDatabase,
  PostgresProvider,
  PostgresProviderFacts,
  StartPostgresOptions,
} from './harness/postgres.js';
export {
  choosePostgresProvider,
  LOCAL_POSTGRES_URL,
  startPostgres,
} from './harness/postgres.js';
export type {
  RedisProvider,
  RedisProviderFacts,
  RedisServer,
  StartRedisOptions,
} from './harness/redis.js';
export {
  chooseRedisProvider,
  findExecutable,
  findRedisServerBinary,
  isDockerAvailable,
  startRedis,
  startRedisServers,
} from './harness/redis.js';
export type { RespValue } from './harness/resp.js';
export { RespError } from './harness/resp.js';
export type {
  RedisAddress,
  RedisSentinelDeployment,
  RedisSentinelNode,
  StartRedisSentinelOptions,
} from './harness/sentinel.js';
export { startRedisSentinel } from './harness/sentinel.js';
