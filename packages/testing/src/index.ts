/**
 * A harness for tests that need real servers: redis-server processes (single, Sentinel, Cluster),
 * throwaway PostgreSQL databases and a fault-injecting proxy. It works under any test runner; the
 * conformance suites are in `@deadbolt/testing/conformance`.
 *
 * @module @deadbolt/testing
 */

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
export type { ScriptExit } from './harness/run-script.js';
export { runScriptToExit } from './harness/run-script.js';
export type {
  RedisAddress,
  RedisSentinelDeployment,
  RedisSentinelNode,
  StartRedisSentinelOptions,
} from './harness/sentinel.js';
export { startRedisSentinel } from './harness/sentinel.js';
