import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { PostgresBackend } from '@deadbolt/postgres';
import pg from 'pg';
import { GIVE_UP_MS, RETRY_MS } from './raw.js';
import { type Contender, managerClient } from './types.js';

/**
 * The environment variable that names the throwaway database of a run: `main` sets it before
 * any contender opens, and the scenarios' child processes inherit it.
 */
export const POSTGRES_URL_VARIABLE = 'DEADBOLT_BENCH_POSTGRES_URL';

function databaseUrl(): string {
  const url = process.env[POSTGRES_URL_VARIABLE];
  if (!url) throw new Error(`[bench] ${POSTGRES_URL_VARIABLE} is not set: main starts PostgreSQL`);
  return url;
}

/** Whether `contender` needs the run's PostgreSQL database. */
export function usesPostgres(contender: Contender): boolean {
  return contender.id.endsWith('-postgres');
}

/** deadbolt with the library's defaults over a `pg` pool of its own. */
export const deadboltPostgres: Contender = {
  id: 'deadbolt-postgres',
  label: 'deadbolt + postgres',
  library: '@deadbolt/postgres (workspace), pg 8.23.1',
  settings: 'defaults',
  role: 'option',
  usesRedis: false,
  async open() {
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 20 });
    const backend = new PostgresBackend(pool);
    await backend.migrate();
    return managerClient(new LockManager({ backend }), async () => {
      await backend.close();
      await pool.end();
    });
  },
};

/**
 * The PostgreSQL floor: `pg_try_advisory_lock` on a connection held for the lock's life (an
 * advisory lock belongs to its session), retried every 10 ms like the raw Redis lock, released by
 * `pg_advisory_unlock`. No fence and no expiry: a holder that hangs keeps the lock.
 */
export const rawPostgres: Contender = {
  id: 'raw-postgres',
  label: 'raw pg_try_advisory_lock',
  library: 'pg 8.23.1',
  settings: 'retry every 10 ms, give up after 10 s',
  role: 'raw',
  usesRedis: false,
  async open() {
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 20 });
    return {
      async acquire(key) {
        const session = await pool.connect();
        const giveUpAt = Date.now() + GIVE_UP_MS;
        try {
          for (;;) {
            const { rows } = await session.query<{ ok: boolean }>(
              'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
              [key],
            );
            if (rows[0]?.ok) break;
            if (Date.now() >= giveUpAt) {
              throw new Error(`raw-postgres: gave up on ${key} after ${GIVE_UP_MS} ms`);
            }
            await sleep(RETRY_MS);
          }
        } catch (error) {
          session.release();
          throw error;
        }
        return async () => {
          try {
            await session.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
          } finally {
            session.release();
          }
        };
      },
      async close() {
        await pool.end();
      },
    };
  },
};
