// The harness of @deadbolt/testing under Jest's default mode, with no vitest installed: a real
// redis-server for a lock through the ioredis adapter.
const { LockManager } = require('@deadbolt/core');
const { IoredisBackend } = require('@deadbolt/ioredis');
const { startRedis } = require('@deadbolt/testing');
const { Redis } = require('ioredis');

test('startRedis() serves a lock to IoredisBackend', async () => {
  const server = await startRedis();
  const client = new Redis(server.url);
  const backend = new IoredisBackend(client, { prefix: 'jest' });
  try {
    const locks = new LockManager({ backend });
    const first = await locks.acquire('job', { ttl: 5_000 });
    await first.release();
    const second = await locks.acquire('job', { ttl: 5_000 });
    expect(second.fence).toBeGreaterThan(first.fence);
    await second.release();
  } finally {
    await backend.close();
    await client.quit();
    await server.stop();
  }
});
