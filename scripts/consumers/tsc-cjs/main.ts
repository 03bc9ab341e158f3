// A TypeScript CommonJS project (module: node16, no "type": "module"), as @tsconfig/node20 sets
// it up: every package's types resolve through its "require" condition, and the output runs.
import { ExitCode, run } from '@deadbolt/cli';
import { ClusterBackend } from '@deadbolt/cluster';
import { type LockBackend, LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { MemoryBackend } from '@deadbolt/memory';
import { NodeRedisBackend } from '@deadbolt/node-redis';
import { instrumentDeadbolt } from '@deadbolt/opentelemetry';
import { PostgresBackend } from '@deadbolt/postgres';
import { RedisBackend } from '@deadbolt/redis-backend';
import { type RedisServer, startRedis } from '@deadbolt/testing';

const constructors: unknown[] = [ClusterBackend, IoredisBackend, NodeRedisBackend, PostgresBackend];
const server: ((options?: object) => Promise<RedisServer>) | undefined = startRedis;

async function main(): Promise<void> {
  const backend: LockBackend = new MemoryBackend();
  const locks = new LockManager({ backend });
  const fence = await locks.withLock('job:1', async (lock) => lock.fence, { ttl: 1_000 });
  if (typeof fence !== 'number' || typeof run !== 'function' || ExitCode === undefined) {
    throw new Error('unexpected exports');
  }
  if (RedisBackend === undefined || instrumentDeadbolt === undefined || server === undefined) {
    throw new Error('missing exports');
  }
  if (constructors.length !== 4) throw new Error('missing constructors');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
