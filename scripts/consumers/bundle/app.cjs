// Bundled by esbuild through `require()` (the packages' CommonJS builds) and run far from node_modules:
// a lock on ioredis and one on node-redis against REDIS_URL, then everything closed, so the
// process exits by itself.
const { LockManager } = require('@deadbolt/core');
const { IoredisBackend } = require('@deadbolt/ioredis');
const { NodeRedisBackend } = require('@deadbolt/node-redis');
const { Redis } = require('ioredis');
const { createClient } = require('redis');

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
  await twice(new IoredisBackend(ioredis, { prefix: 'cjs-ioredis' }));
  await ioredis.quit();
  const nodeRedis = await createClient({ url: process.env.REDIS_URL }).connect();
  await twice(new NodeRedisBackend(nodeRedis, { prefix: 'cjs-node-redis' }));
  await nodeRedis.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
