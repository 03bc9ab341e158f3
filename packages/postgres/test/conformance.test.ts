import { randomUUID } from 'node:crypto';
import { type PostgresDatabase, startPostgres } from '@deadbolt/testing';
import { runBackendConformance } from '@deadbolt/testing/conformance';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { PostgresBackend } from '../src/index.js';

let database: PostgresDatabase;
let pool: pg.Pool;
const tables = new Map<PostgresBackend, string>();

beforeAll(async () => {
  database = await startPostgres();
  pool = new pg.Pool({ connectionString: database.url });
});
afterAll(async () => {
  await pool?.end();
  await database?.stop();
});

runBackendConformance({
  name: 'postgres',
  capabilities: ['queue', 'wakeUps', 'handoff', 'fences', 'inspection', 'listing', 'close'],
  // Its first LISTEN wakes the waits that began before it, which may have missed a release.
  wakesWhenListening: true,
  create: () => {
    // A table per test, so what it stores is what this test stored.
    const table = `conformance_${randomUUID().replaceAll('-', '')}`;
    const backend = new PostgresBackend(pool, { table });
    tables.set(backend, table);
    return backend;
  },
  cleanup: (backend) => {
    tables.delete(backend);
  },
  // Holders and queue places; a key's fence row outlives them (for an hour) and is no lock.
  storedNames: async (backend) => {
    const table = tables.get(backend);
    const exists = await pool.query('SELECT to_regclass($1) AS found', [`${table}_holders`]);
    // Nothing reached the database yet, not even the migration.
    if (exists.rows[0]?.found === null) return [];
    const { rows } = await pool.query<{ key: Buffer }>(
      `SELECT key FROM ${table}_holders UNION SELECT key FROM ${table}_queue`,
    );
    return rows.map((row) => row.key.toString('utf8'));
  },
});
