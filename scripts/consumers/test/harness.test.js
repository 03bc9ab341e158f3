// The harness of @deadbolt/testing under Jest's default mode, with no vitest installed: a real
// redis-server and a throwaway PostgreSQL database, each serving a lock.
const { LockManager } = require('@deadbolt/core');
const { IoredisBackend } = require('@deadbolt/ioredis');
const { PostgresBackend } = require('@deadbolt/postgres');
const { startPostgres, startRedis } = require('@deadbolt/testing');
const { Redis } = require('ioredis');
const { Pool } = require('pg');

/** Two acquisitions in turn: the second holder's fence is higher. */
async function twice(backend) {
  const locks = new LockManager({ backend });
  const first = await locks.acquire('job', { ttl: 5_000 });
  await first.release();
  const second = await locks.acquire('job', { ttl: 5_000 });
  expect(second.fence).toBeGreaterThan(first.fence);
  await second.release();
}

test('startRedis() serves a lock to IoredisBackend', async () => {
  const server = await startRedis();
  const client = new Redis(server.url);
  const backend = new IoredisBackend(client, { prefix: 'jest' });
  try {
    await twice(backend);
  } finally {
    await backend.close();
    await client.quit();
    await server.stop();
  }
});

// startPostgres() loads pg, an optional peer, itself: through require() in this build.
test('startPostgres() serves a lock to PostgresBackend', async () => {
  const database = await startPostgres();
  const pool = new Pool({ connectionString: database.url });
  const backend = new PostgresBackend(pool);
  try {
    await twice(backend);
  } finally {
    await backend.close();
    await pool.end();
    await database.stop();
  }
});
