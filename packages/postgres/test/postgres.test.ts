import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AcquireRequest,
  BackendError,
  InvalidArgumentError,
  LockManager,
  MAX_KEY_BYTES,
} from '@deadbolt/core';
import { type PostgresDatabase, startPostgres } from '@deadbolt/testing';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresBackend, type PostgresBackendOptions } from '../src/index.js';
import { likePattern } from '../src/sql.js';

let database: PostgresDatabase;
let pool: pg.Pool;
const opened: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  database = await startPostgres();
  pool = new pg.Pool({ connectionString: database.url });
});
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
  vi.useRealTimers();
});
afterAll(async () => {
  await pool?.end();
  await database?.stop();
});

const freshTable = () => `t_${randomUUID().replaceAll('-', '')}`;

/** A backend on a table of its own, closed after the test. */
function backendOn(options: PostgresBackendOptions = {}, on: pg.Pool = pool): PostgresBackend {
  const backend = new PostgresBackend(on, { table: freshTable(), ...options });
  opened.push(() => backend.close());
  return backend;
}

/** A pool of its own, ended after the test. */
function newPool(config: pg.PoolConfig = {}): pg.Pool {
  const own = new pg.Pool({ connectionString: database.url, ...config });
  opened.push(() => own.end());
  return own;
}

const request = (key: string, token: string, more: Partial<AcquireRequest> = {}) => ({
  key,
  token,
  ttlMs: 30_000,
  limit: 1,
  weight: 1,
  ...more,
});

async function fenceOf(backend: PostgresBackend, key: string, token: string): Promise<number> {
  const reply = await backend.acquire(request(key, token));
  if (!reply.ok) throw new Error(`expected ${token} to be granted ${key}`);
  return reply.fence;
}

/** Resolves once `backend` LISTENs (it then stays listening for a while). */
const listening = (backend: PostgresBackend) =>
  backend.wakeUps.waitForRelease({ key: '-', signal: new AbortController().signal, since: 0 });

/** Connections checked out of `of` now (the listener among them). */
const checkedOut = (of: pg.Pool) => of.totalCount - of.idleCount;

async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe('PostgresBackend options', () => {
  it.each([
    ['a quote and SQL', { table: 'locks"; DROP TABLE x; --' }, 'options.table'],
    ['a leading digit', { table: '1locks' }, 'options.table'],
    ['a dot', { table: 'public.locks' }, 'options.table'],
    ['49 characters', { table: 'a'.repeat(49) }, 'options.table'],
    ['a number', { table: 7 }, 'options.table'],
    ['a schema with a space', { schema: 'my schema' }, 'options.schema'],
    [
      'a schema and table over 62 characters',
      { schema: 's'.repeat(30), table: 't'.repeat(33) },
      'options.schema',
    ],
    ['a typo', { tabel: 'locks' }, 'options.tabel'],
  ])('refuses a table or schema with %s, naming it', (_, options, argument) => {
    const create = () => new PostgresBackend(pool, options as PostgresBackendOptions);
    expect(create).toThrow(InvalidArgumentError);
    expect(create).toThrow(expect.objectContaining({ argument }));
  });

  it('refuses what is not a pool, and a single Client with a hint', () => {
    for (const notAPool of [undefined, {}, { query: () => undefined }]) {
      expect(() => new PostgresBackend(notAPool as never)).toThrow(
        expect.objectContaining({ argument: 'pool' }),
      );
    }
    const client = new pg.Client({ connectionString: database.url });
    expect(() => new PostgresBackend(client as never)).toThrow(/single pg Client; pass a pg Pool/);
  });

  it('keeps tables apart, and a schema apart from search_path', async () => {
    const schema = `s_${randomUUID().slice(0, 8)}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    const table = freshTable();
    const inSchema = backendOn({ schema, table });
    const unqualified = backendOn({ table });
    const other = backendOn();
    expect((await inSchema.acquire(request('k', 'a'))).ok).toBe(true);
    expect((await unqualified.acquire(request('k', 'b'))).ok).toBe(true);
    expect((await other.acquire(request('k', 'c'))).ok).toBe(true);
    const { rows } = await pool.query('SELECT to_regclass($1) AS found', [`${schema}.${table}`]);
    expect(rows[0]?.found).not.toBeNull();
  });
});

describe('PostgresBackend migrate()', () => {
  it('creates the tables on first use, once, even when many backends start at once', async () => {
    const table = freshTable();
    const backends = Array.from({ length: 8 }, () => backendOn({ table }));
    const replies = await Promise.all(
      backends.map((backend, index) => backend.acquire(request(`k${index}`, 't'))),
    );
    expect(replies.every((reply) => reply.ok)).toBe(true);
    await Promise.all(backends.map((backend) => backend.migrate()));
    const { rows } = await pool.query(
      "SELECT obj_description(to_regclass($1), 'pg_class') AS marker",
      [table],
    );
    expect(rows[0]?.marker).toMatch(/^deadbolt locks, layout \d+$/);
  });

  it('runs no DDL once migrated, so a role without CREATE rights can lock', async () => {
    const table = freshTable();
    await backendOn({ table }).migrate();
    const versions = () =>
      pool.query(
        `SELECT xmin::text FROM pg_class WHERE oid = $1::regclass
         UNION ALL SELECT xmin::text FROM pg_proc WHERE proname LIKE $2 ORDER BY 1`,
        [table, `${table}\\_%`],
      );
    const before = (await versions()).rows;
    expect(before).toHaveLength(7);
    expect((await backendOn({ table }).acquire(request('k', 't'))).ok).toBe(true);
    expect((await versions()).rows).toEqual(before);
  });

  it('rejects a failed migration with BackendError, and tries again on the next call', async () => {
    const schema = `s_${randomUUID().slice(0, 8)}`;
    const backend = backendOn({ schema });
    const error = await backend.acquire(request('k', 't')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(
      /^\[deadbolt\] \[postgres\] migrating .* failed: .*schema .* does not exist/,
    );
    await pool.query(`CREATE SCHEMA ${schema}`);
    expect((await backend.acquire(request('k', 't'))).ok).toBe(true);
  });
});

describe('PostgresBackend and the database', () => {
  it('wraps an unreachable database as BackendError with the driver error as cause', async () => {
    const nowhere = newPool({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
    const backend = backendOn({}, nowhere);
    const error = await backend.acquire(request('k', 't')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] \[postgres\] /);
    expect((error as BackendError).cause).toMatchObject({ code: 'ECONNREFUSED' });
    const waiting = backend.wakeUps.waitForRelease({
      key: 'k',
      signal: new AbortController().signal,
    });
    await expect(waiting).rejects.toBeInstanceOf(BackendError);
  });

  it('refuses to run under REPEATABLE READ or SERIALIZABLE, where it would read stale holders', async () => {
    const serializable = newPool({ options: '-c default_transaction_isolation=serializable' });
    const table = freshTable();
    await backendOn({ table }).migrate();
    const error = await backendOn({ table }, serializable)
      .acquire(request('k', 't'))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/READ COMMITTED, not serializable/);
  });

  it("judges leases by the database's clock, whatever the client's says", async () => {
    const backend = backendOn();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 3_600_000);
    expect((await backend.acquire(request('k', 'a', { ttlMs: 10_000 }))).ok).toBe(true);
    const [holder] = (await backend.inspection.inspect({ key: 'k' }))?.holders ?? [];
    expect(holder?.ttlMs).toBeGreaterThan(5_000);
    expect(holder?.ttlMs).toBeLessThanOrEqual(10_000);
  });

  it('keeps fences increasing past an advanced fence, after every lease ended', async () => {
    const backend = backendOn();
    const first = await fenceOf(backend, 'k', 'a');
    await backend.release({ key: 'k', token: 'a' });
    await backend.fences.advance({ key: 'k', fence: first + 1_000_000_000 });
    const advanced = await fenceOf(backend, 'k', 'b');
    expect(advanced).toBeGreaterThan(first + 1_000_000_000);
    await backend.release({ key: 'k', token: 'b' });
    expect(await fenceOf(backend, 'k', 'c')).toBeGreaterThan(advanced);
  });

  it('sweeps the rows of keys an hour past their last lease, and their next fence is still higher', async () => {
    const table = freshTable();
    const backend = backendOn({ table });
    const before = await fenceOf(backend, 'old', 'a');
    await backend.release({ key: 'old', token: 'a' });
    // As if an hour had passed: the row may go.
    await pool.query(`UPDATE ${table} SET kept_until = now() - interval '1 second'`);
    await fenceOf(backend, 'other', 'a');
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE key = $1`, [
      Buffer.from('old'),
    ]);
    expect(rows[0]?.n).toBe(0);
    expect(await fenceOf(backend, 'old', 'b')).toBeGreaterThan(before);
  });

  it('keeps mutual exclusion between backends on separate pools (separate processes)', async () => {
    const table = freshTable();
    const managers = [newPool({ max: 3 }), newPool({ max: 3 })].map(
      (own) => new LockManager({ backend: backendOn({ table }, own) }),
    );
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        (managers[index % 2] as LockManager).withLock(
          'shared',
          async () => {
            inside += 1;
            most = Math.max(most, inside);
            await sleep(5);
            inside -= 1;
          },
          { wait: 30_000 },
        ),
      ),
    );
    expect(most).toBe(1);
  });
});

/** Keys whose bytes would break a NOTIFY channel or payload, or SQL spliced from them. */
const hostileKeys = [
  ['quotes and SQL', `k' || pg_notify('x', 'y') || '"; DROP TABLE t; --`],
  ['a NUL byte', 'a\u0000b'],
  ['spaces, as in the payload', 'grant 1 2 3 4 5'],
  ['a line break', 'one\ntwo'],
  ['unicode', 'clé-鍵-🔒'],
  [`${MAX_KEY_BYTES} bytes`, `${'🔒'.repeat((MAX_KEY_BYTES - 4) / 4)}abcd`],
];

describe('PostgresBackend wake-ups and handoffs', () => {
  it.each(hostileKeys)(
    'wakes the waiter of a key with %s, and not that of a look-alike',
    async (_, key) => {
      const backend = backendOn();
      const lookalike = `${[...key].slice(0, -1).join('')}_`;
      expect((await backend.acquire(request(key, 'holder'))).ok).toBe(true);
      expect((await backend.acquire(request(lookalike, 'holder'))).ok).toBe(true);
      const signal = new AbortController().signal;
      await listening(backend);
      const since = Date.now();
      await backend.release({ key: lookalike, token: 'holder' });
      let woken = false;
      const waiting = backend.wakeUps.waitForRelease({ key, signal, since }).then(() => {
        woken = true;
      });
      await sleep(200);
      expect(woken).toBe(false);
      await backend.release({ key, token: 'holder' });
      await waiting;
      expect(woken).toBe(true);
    },
  );

  it.each(hostileKeys)(
    'hands a key with %s to a waiter whose token has one too',
    async (_, key) => {
      const backend = backendOn();
      const token = `${key}\u0000token`;
      expect((await backend.acquire(request(key, 'holder'))).ok).toBe(true);
      const waiter = {
        ...request(key, token),
        placeTtlMs: 10_000,
        handoff: { attempt: 3, ttlMs: 5_000 },
      };
      expect((await backend.queue.acquire(waiter)).ok).toBe(false);
      const signal = new AbortController().signal;
      await listening(backend);
      const waiting = backend.handoff.waitForGrant({
        key,
        signal,
        token,
        attempt: 3,
        since: Date.now(),
      });
      await sleep(100);
      await backend.release({ key, token: 'holder' });
      expect(await waiting).toMatchObject({ ok: true, attempt: 3, ttlMs: 5_000 });
      const info = await backend.inspection.inspect({ key });
      expect(info?.holders.map((holder) => holder.token)).toEqual([token]);
    },
  );

  it('serves 100 waiters on 25 keys over one connection, and gives it back to the pool', async () => {
    const own = newPool({ max: 4 });
    const backend = backendOn({}, own);
    await backend.migrate();
    const controller = new AbortController();
    setMaxListeners(100, controller.signal);
    const waits = Array.from({ length: 100 }, (_, index) =>
      backend.wakeUps
        .waitForRelease({ key: `key ${index % 25}`, signal: controller.signal })
        .catch(() => undefined),
    );
    await eventually('the listener is checked out', () => checkedOut(own) === 1);
    // The other three connections stay free for locking meanwhile.
    const held = await Promise.all(
      Array.from({ length: 25 }, (_, index) => backend.acquire(request(`key ${index}`, 'h'))),
    );
    expect(held.every((reply) => reply.ok)).toBe(true);
    await Promise.all(
      Array.from({ length: 25 }, (_, index) =>
        backend.release({ key: `key ${index}`, token: 'h' }),
      ),
    );
    await Promise.all(waits);
    await eventually('the listener went back to the pool', () => checkedOut(own) === 0);
    const { rows } = await own.query('SELECT pg_listening_channels() AS channel');
    expect(rows).toEqual([]);
  });

  it('gives the listener back at close(), so the pool ends at once', async () => {
    const own = new pg.Pool({ connectionString: database.url });
    const backend = new PostgresBackend(own, { table: freshTable() });
    const waiting = backend.wakeUps.waitForRelease({
      key: 'k',
      signal: new AbortController().signal,
    });
    await eventually('the listener is checked out', () => checkedOut(own) === 1);
    const rejected = expect(waiting).rejects.toThrow(/closed/);
    await backend.close();
    await rejected;
    expect(checkedOut(own)).toBe(0);
    await own.end();
  });

  it('rejects the waiters of a listener whose connection is killed, and listens again after', async () => {
    const own = newPool();
    const table = freshTable();
    const backend = backendOn({ table }, own);
    const signal = new AbortController().signal;
    await listening(backend);
    const rejected = expect(
      backend.wakeUps.waitForRelease({ key: 'k', signal }),
    ).rejects.toBeInstanceOf(BackendError);
    await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1', [
      `LISTEN "${table}"`,
    ]);
    await rejected;
    expect((await backend.acquire(request('k', 'holder'))).ok).toBe(true);
    await listening(backend);
    const again = backend.wakeUps.waitForRelease({ key: 'k', signal, since: Date.now() });
    await backend.release({ key: 'k', token: 'holder' });
    await again;
  });
});

describe('PostgresBackend listing', () => {
  it('matches LIKE characters literally and a ? as one character of any length', async () => {
    const backend = backendOn();
    for (const key of ['a%c', 'abc', 'a_c', 'a🔒c', 'a\\c']) {
      expect((await backend.acquire(request(key, 't'))).ok).toBe(true);
    }
    const list = async (match: string) => (await backend.listing.list({ match })).keys.sort();
    expect(await list('a%c')).toEqual(['a%c']);
    expect(await list('a_c')).toEqual(['a_c']);
    expect(await list('a?c')).toEqual(['a%c', 'a\\c', 'a_c', 'abc', 'a🔒c'].sort());
    expect(await list('a\\\\c')).toEqual(['a\\c']);
    expect(likePattern('a?%_\\*')).toEqual(Buffer.from('a_%\\%\\_*'));
  });
});
