/**
 * `node bench/dist/postgres-pair-cost.js [--seconds N]`: the wall time of one uncontended acquire
 * + release on PostgreSQL, on a throwaway database of the harness (`startPostgres()`). Variants
 * run in turn in 200 ms slices, each pair on another of 1 000 keys, over pools of one connection:
 * deadbolt's `LockManager` and bare `PostgresBackend`, and as references a lock in two plain
 * statements (INSERT … ON CONFLICT DO NOTHING, DELETE; no fence, no expiry check), PostgreSQL's
 * session advisory lock (`pg_try_advisory_lock` + `pg_advisory_unlock`) and two `SELECT 1` round
 * trips. Each runs with the server's `synchronous_commit` (on: a grant waits for
 * its WAL flush, as a durable lock must) and with it off (what is left without the disk).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { LockManager } from '@deadbolt/core';
import { PostgresBackend } from '@deadbolt/postgres';
import { startPostgres } from '@deadbolt/testing';
import pg from 'pg';

const SLICE_MS = 200;
const WARM_UP_PAIRS = 300;
const KEYS = Array.from({ length: 1_000 }, (_, index) => `pair-cost:${index}`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '12' } } });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error('[postgres-pair-cost] --seconds must be a positive number');
  const database = await startPostgres();
  const pools: pg.Pool[] = [];
  const backends: PostgresBackend[] = [];
  try {
    let next = 0;
    const nextKey = () => KEYS[next++ % KEYS.length] as string;
    const token = () => randomBytes(16).toString('hex');
    const variants: Record<string, () => Promise<void>> = {};
    for (const commit of ['on', 'off']) {
      const pool = new pg.Pool({
        connectionString: database.url,
        max: 1,
        options: `-c synchronous_commit=${commit}`,
      });
      pools.push(pool);
      const backend = new PostgresBackend(pool, { table: 'pair_cost' });
      backends.push(backend);
      await backend.migrate();
      await pool.query('CREATE TABLE IF NOT EXISTS plain_lock (key text PRIMARY KEY, token text)');
      const locks = new LockManager({ backend });
      const suffix = ` (synchronous_commit ${commit})`;
      variants[`deadbolt: LockManager${suffix}`] = async () => {
        const lock = await locks.acquire(nextKey());
        await lock.release();
      };
      variants[`deadbolt: PostgresBackend only${suffix}`] = async () => {
        const key = nextKey();
        const own = token();
        await backend.acquire({ key, token: own, ttlMs: 30_000, limit: 1, weight: 1 });
        await backend.release({ key, token: own });
      };
      variants[`reference: INSERT ON CONFLICT + DELETE${suffix}`] = async () => {
        const key = nextKey();
        const own = token();
        await pool.query('INSERT INTO plain_lock VALUES ($1, $2) ON CONFLICT DO NOTHING', [
          key,
          own,
        ]);
        await pool.query('DELETE FROM plain_lock WHERE key = $1 AND token = $2', [key, own]);
      };
      // PostgreSQL's own lock: held by the session, no row, no WAL, no expiry and no fence.
      variants[`reference: pg_try_advisory_lock + pg_advisory_unlock${suffix}`] = async () => {
        const key = nextKey();
        await pool.query('SELECT pg_try_advisory_lock(hashtext($1))', [key]);
        await pool.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
      };
      variants[`reference: two SELECT 1${suffix}`] = async () => {
        await pool.query('SELECT 1');
        await pool.query('SELECT 1');
      };
    }
    const totals = new Map(Object.keys(variants).map((name) => [name, { wallMs: 0, pairs: 0 }]));
    for (const pair of Object.values(variants)) {
      for (let warm = 0; warm < WARM_UP_PAIRS; warm++) await pair();
    }
    const rounds = Math.max(1, Math.round((seconds * 1000) / (SLICE_MS * totals.size)));
    for (let round = 0; round < rounds; round++) {
      for (const [name, pair] of Object.entries(variants)) {
        const total = totals.get(name) as { wallMs: number; pairs: number };
        const startedAt = performance.now();
        while (performance.now() - startedAt < SLICE_MS) {
          await pair();
          total.pairs += 1;
        }
        total.wallMs += performance.now() - startedAt;
      }
    }
    console.log('| variant | µs/pair |');
    console.log('| --- | ---: |');
    for (const [name, { wallMs, pairs }] of totals) {
      console.log(`| ${name} | ${Math.round((wallMs * 1000) / pairs)} |`);
    }
  } finally {
    for (const backend of backends) await backend.close();
    for (const pool of pools) await pool.end();
    await database.stop();
  }
}

await main();
