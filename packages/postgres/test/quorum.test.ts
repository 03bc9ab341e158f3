import { randomUUID } from 'node:crypto';
import { type LockBackend, LockManager, quorum } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { MemoryBackend } from '@deadbolt/memory';
import { type PostgresDatabase, startPostgres, startRedis } from '@deadbolt/testing';
import { runBackendConformance } from '@deadbolt/testing/conformance';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresBackend } from '../src/index.js';

// Two databases (as two PostgreSQL servers would be) and one in-process member.
let databases: PostgresDatabase[] = [];
let pools: pg.Pool[] = [];
const members = new Map<LockBackend, LockBackend[]>();

beforeAll(async () => {
  databases = await Promise.all([startPostgres(), startPostgres()]);
  pools = databases.map((database) => new pg.Pool({ connectionString: database.url }));
});
afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await Promise.all(databases.map((database) => database.stop()));
});

async function quorumOfThree(): Promise<LockBackend> {
  const table = `q_${randomUUID().replaceAll('-', '')}`;
  // A table each, so that they stay two members when POSTGRES_URL makes both databases one.
  const databases = pools.map(
    (pool, index) => new PostgresBackend(pool, { table: `${table}_${index}` }),
  );
  // As an application would at startup: a first acquire that also creates the tables could take
  // longer than the short leases some tests ask a quorum for.
  await Promise.all(databases.map((backend) => backend.migrate()));
  const own = [...databases, new MemoryBackend()];
  const backend = quorum(own);
  members.set(backend, own);
  return backend;
}

runBackendConformance({
  name: 'quorum() of two postgres databases and a memory backend',
  create: quorumOfThree,
  cleanup: async (backend) => {
    for (const member of members.get(backend) ?? []) await member.close?.();
    members.delete(backend);
  },
  capabilities: ['queue', 'wakeUps', 'fences', 'inspection'],
  // Its PostgreSQL members wake the waits that began before their LISTEN.
  wakesWhenListening: true,
  // Majorities that grant permits need not share a member: quorum() refuses semaphores.
  semaphores: false,
});

describe('quorum() over postgres and memory', () => {
  it('keeps the lock, with increasing fences, while one database is unreachable', async () => {
    const table = `q_${randomUUID().replaceAll('-', '')}`;
    const down = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
    const backends = [
      new PostgresBackend(pools[0] as pg.Pool, { table }),
      new PostgresBackend(down, { table }),
      new MemoryBackend(),
    ];
    const locks = new LockManager({ backend: quorum(backends) });
    try {
      const first = await locks.acquire('job');
      expect(await new LockManager({ backend: quorum(backends) }).tryAcquire('job')).toBeNull();
      await first.release();
      const second = await locks.acquire('job');
      expect(second.fence).toBeGreaterThan(first.fence);
      await second.release();
    } finally {
      for (const backend of backends) await backend.close();
      await down.end();
    }
  });
});

describe('quorum() over postgres and a Redis server', () => {
  it('shares one lock space with a Redis backend, and keeps it when the Redis member dies', async () => {
    const redis = await startRedis();
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    client.on('error', () => undefined);
    const table = `r_${randomUUID().replaceAll('-', '')}`;
    const backends: LockBackend[] = [
      new PostgresBackend(pools[0] as pg.Pool, { table }),
      new IoredisBackend(client),
      new MemoryBackend(),
    ];
    const [one, other] = [0, 1].map(() => new LockManager({ backend: quorum(backends) }));
    try {
      const first = await one!.acquire('invoice:42');
      expect(await other!.tryAcquire('invoice:42')).toBeNull();
      await first.release();
      const second = await other!.acquire('invoice:42');
      expect(second.fence).toBeGreaterThan(first.fence);
      await redis.kill();
      // PostgreSQL and memory are still a majority: the holder keeps it, nobody else gets it.
      await second.extend();
      expect(second.held).toBe(true);
      expect(await one!.tryAcquire('invoice:42')).toBeNull();
      await second.release();
      const third = await one!.acquire('invoice:42');
      expect(third.fence).toBeGreaterThan(second.fence);
      await third.release();
    } finally {
      for (const backend of backends) await backend.close?.();
      client.disconnect();
      await redis.stop();
    }
  });
});
