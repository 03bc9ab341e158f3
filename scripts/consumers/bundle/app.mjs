// Bundled by esbuild through `import` (the packages' ESM builds) and run far from node_modules:
// a lock on ioredis and one on node-redis against REDIS_URL, then everything closed, so the
// process exits by itself.
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { NodeRedisBackend } from '@deadbolt/node-redis';
import { Redis } from 'ioredis';
import { createClient } from 'redis';

async function twice(backend) {
  const locks = new LockManager({ backend });
  const first = await locks.acquire('bundle:job', { ttl: 5_000 });
  await first.release();
  const second = await locks.acquire('bundle:job', { ttl: 5_000 });
  await second.release();
  if (!(second.fence > first.fence)) throw new Error(`fences ${first.fence}, ${second.fence}`);
  await backend.close();
}

async function main() {
  const ioredis = new Redis(process.env.REDIS_URL);
  await twice(new IoredisBackend(ioredis, { prefix: 'esm-ioredis' }));
  await ioredis.quit();
  const nodeRedis = await createClient({ url: process.env.REDIS_URL }).connect();
  await twice(new NodeRedisBackend(nodeRedis, { prefix: 'esm-node-redis' }));
  await nodeRedis.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
