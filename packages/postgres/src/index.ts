/**
 * deadbolt in PostgreSQL, over a node-postgres pool.
 *
 * @module @deadbolt/postgres
 */
import {
  type AcquireRequest,
  type AcquireResult,
  type AdvanceFenceRequest,
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertExtendRequest,
  assertGrantWaitRequest,
  assertInspectRequest,
  assertListRequest,
  assertQueuedAcquireRequest,
  assertReleaseRequest,
  assertWaitRequest,
  BackendError,
  type ExtendRequest,
  type FenceCapability,
  globToRegExp,
  type HandedOff,
  type HandoffCapability,
  hideTokens,
  type InspectionCapability,
  type InspectRequest,
  InvalidArgumentError,
  type ListingCapability,
  type ListPage,
  type ListRequest,
  type LockBackend,
  type LockInfo,
  type QueueCapability,
  type QueuedAcquireRequest,
  type ReleaseRequest,
  type WakeUpCapability,
} from '@deadbolt/core';
import { Notifications } from './notifications.js';
import {
  IDENTIFIER,
  likePattern,
  MAX_TABLE_LENGTH,
  SCHEMA_MARKER,
  type Statements,
  statements,
  tableNames,
} from './sql.js';

/** What a query resolves with: the rows, as node-postgres decodes them. */
export interface PostgresQueryResult {
  rows: Record<string, unknown>[];
}

/** The slice of a node-postgres `Pool` this backend uses. */
export interface PostgresPool {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  connect(): Promise<PostgresPoolClient>;
  /** Set once `end()` was called: a listening connection then goes back at once. */
  readonly ending?: boolean;
}

/** The slice of a connection checked out of the pool (`PoolClient`) that LISTENs for releases. */
export interface PostgresPoolClient {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  release(destroy?: Error | boolean): void;
  on(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** A NOTIFY as node-postgres reports it. */
export interface PostgresNotification {
  channel: string;
  payload?: string | undefined;
}

/** Options of {@link PostgresBackend}. */
export interface PostgresBackendOptions {
  /**
   * The table that holds the locks; the backend also uses `<table>_holders`, `<table>_queue`,
   * functions named `<table>_<operation>`, and a NOTIFY channel named like the table. Backends
   * with different tables never see each other's locks. Letters, digits and `_`, at most 48.
   * @default 'deadbolt_locks'
   */
  table?: string;
  /**
   * The schema of the table and functions; without one, the connection's `search_path` finds
   * them. Letters, digits and `_`.
   * @default undefined
   */
  schema?: string;
}

/**
 * deadbolt in PostgreSQL over your node-postgres (`pg`) pool: leases in a table, each operation
 * one call of a PL/pgSQL function that serializes the key with a row lock and reads the
 * database's clock, and waiters woken through LISTEN/NOTIFY on one connection checked out of
 * your pool while anyone waits. The table and functions are created on first use (or by
 * {@link PostgresBackend.migrate}). `close()` gives that connection back; your pool stays yours.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const locks = new LockManager({ backend: new PostgresBackend(pool) });
 * await locks.withLock('invoice:42', async (lock) => save({ fence: lock.fence }));
 * ```
 */
export class PostgresBackend implements LockBackend {
  readonly queue: QueueCapability = { acquire: (request) => this.#acquireQueued(request) };
  readonly wakeUps: WakeUpCapability = {
    waitForRelease: async (request) => {
      assertWaitRequest(request);
      await this.#wait(request.key, request.signal, request.since);
    },
  };
  readonly handoff: HandoffCapability = {
    waitForGrant: async (request) => {
      assertGrantWaitRequest(request);
      const { key, signal, since, token, attempt } = request;
      return (await this.#wait(key, signal, since, { token, attempt })) ?? null;
    },
  };
  readonly fences: FenceCapability = { advance: (request) => this.#advanceFence(request) };
  readonly inspection: InspectionCapability = { inspect: (request) => this.#inspect(request) };
  readonly listing: ListingCapability = { list: (request) => this.#list(request) };

  readonly #pool: PostgresPool;
  readonly #table: string;
  readonly #sql: Statements;
  readonly #notifications: Notifications;
  #migrated: Promise<void> | undefined;
  #closed = false;

  /**
   * @param pool - a node-postgres `Pool` (not a single `Client`: waiting needs a second connection)
   * @param options - `table` and `schema`
   */
  constructor(pool: PostgresPool, options: PostgresBackendOptions = {}) {
    assertPool(pool);
    const { table, schema } = resolveOptions(options);
    const names = tableNames(schema, table);
    this.#pool = pool;
    this.#table = names.table;
    this.#sql = statements(names);
    this.#notifications = new Notifications({
      connect: () => pool.connect(),
      ending: () => pool.ending === true,
      channel: names.channel,
      listen: this.#sql.listen,
    });
  }

  /**
   * Creates the tables and functions unless they are there already. Idempotent and safe to run
   * from many processes at once (they take turns on an advisory lock). The backend runs it before
   * its first operation; call it yourself from a deploy step when the application's role may not
   * create tables (then the backend only checks the table's comment).
   */
  migrate(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    this.#migrated ??= this.#migrate().catch((error: unknown) => {
      // The next call tries again (the database may be back, or the grants fixed).
      this.#migrated = undefined;
      throw new BackendError(`[postgres] migrating ${this.#table} failed`, error);
    });
    return this.#migrated;
  }

  async #migrate(): Promise<void> {
    const migrated = async (on: Pick<PostgresPool, 'query'>) =>
      (await on.query(this.#sql.migrationMarker, [this.#table])).rows[0]?.marker === SCHEMA_MARKER;
    // The usual case, once the tables exist: one query, no transaction.
    if (await migrated(this.#pool)) return;
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(this.#sql.migrationLock, [`deadbolt ${this.#table}`]);
      // Another process may have migrated while this one waited for the lock.
      if (!(await migrated(client))) {
        for (const statement of this.#sql.migration) await client.query(statement);
      }
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      // The connection may be mid-transaction: destroying it is the one sure way to end it.
      client.release(true);
      throw error;
    }
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    return this.#acquire(request, [null, null, null, null]);
  }

  async #acquireQueued(request: QueuedAcquireRequest): Promise<AcquireResult> {
    assertQueuedAcquireRequest(request);
    const { placeTtlMs, order, handoff } = request;
    return this.#acquire(request, [
      Math.ceil(placeTtlMs),
      order ?? null,
      handoff ? Math.ceil(handoff.ttlMs) : null,
      handoff?.attempt ?? null,
    ]);
  }

  async #acquire(request: AcquireRequest, queued: unknown[]): Promise<AcquireResult> {
    const { key, token, limit, weight, owner } = request;
    const ttlMs = Math.ceil(request.ttlMs);
    const [row] = await this.#query('acquire', [
      bytes(key),
      bytes(token),
      ttlMs,
      limit,
      weight,
      owner === undefined ? null : bytes(owner),
      ...queued,
    ]);
    if (row?.granted === true) return { ok: true, fence: Number(row.fence), ttlMs };
    return row?.retry_in_ms == null
      ? { ok: false }
      : { ok: false, retryInMs: Number(row.retry_in_ms) };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    const { key, token, ttlMs } = request;
    const [row] = await this.#query('extend', [bytes(key), bytes(token), Math.ceil(ttlMs)]);
    return row?.extended === true;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    const [row] = await this.#query('release', [bytes(request.key), bytes(request.token)]);
    return row?.released === true;
  }

  async #advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    await this.#query('advanceFence', [bytes(request.key), request.fence]);
  }

  async #inspect(request: InspectRequest): Promise<LockInfo | null> {
    assertInspectRequest(request);
    const rows = await this.#query('inspect', [bytes(request.key)]);
    const [first] = rows;
    if (first === undefined) return null;
    const holders = rows.map((row) => ({
      token: text(row.token),
      weight: Number(row.weight),
      ttlMs: Number(row.ttl_ms),
      ...(row.owner != null && { owner: text(row.owner) }),
    }));
    return hideTokens({
      key: request.key,
      holders,
      fence: Number(first.fence),
      queued: Number(first.queued),
    });
  }

  /**
   * Keys in byte order after the cursor. The database narrows them with a LIKE pattern that every
   * match fits (a glob's `?` is one character, which is one to four bytes); the glob's own
   * regular expression then decides.
   */
  async #list(request: ListRequest): Promise<ListPage> {
    assertListRequest(request);
    const { match = '*', cursor, count = 100 } = request;
    const rows = await this.#query('list', [bytes(cursor ?? ''), likePattern(match), count]);
    const scanned = rows.map((row) => text(row.key));
    const pattern = globToRegExp(match);
    return {
      keys: scanned.filter((key) => pattern.test(key)),
      cursor: scanned.length < count ? null : (scanned.at(-1) as string),
    };
  }

  #wait(
    key: string,
    signal: AbortSignal,
    since: number | undefined,
    grantee?: { token: string; attempt: number },
  ): Promise<HandedOff | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#notifications.wait(key, signal, since, grantee);
  }

  /**
   * Rejects pending waits and gives the listening connection back; then every method rejects
   * with `BackendError`. Leases stay in the table until they expire; the pool stays open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#notifications.close(closedError());
  }

  /** Runs a statement after the migration; failures become `BackendError`s. */
  async #query(
    statement: 'acquire' | 'extend' | 'release' | 'advanceFence' | 'inspect' | 'list',
    values: unknown[],
  ): Promise<Record<string, unknown>[]> {
    if (this.#closed) throw closedError();
    await this.migrate();
    try {
      return (await this.#pool.query(this.#sql[statement], values)).rows;
    } catch (error) {
      throw new BackendError(`[postgres] ${statement} failed`, error);
    }
  }
}

/** A key, token or owner as the database stores it: its UTF-8 bytes. */
function bytes(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

function resolveOptions(options: PostgresBackendOptions): { table: string; schema?: string } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError('options', 'expected an object such as { table }');
  }
  for (const name of Object.keys(options)) {
    if (name !== 'table' && name !== 'schema') {
      throw new InvalidArgumentError(`options.${name}`, 'unknown option; expected table or schema');
    }
  }
  const { table = 'deadbolt_locks', schema } = options;
  assertIdentifier(table, 'options.table', MAX_TABLE_LENGTH);
  if (schema === undefined) return { table };
  assertIdentifier(schema, 'options.schema', 63);
  // The channel, `schema.table`, is an identifier too.
  if (schema.length + 1 + table.length > 63) {
    throw new InvalidArgumentError('options.schema', 'with the table, it is over 62 characters');
  }
  return { table, schema };
}

function assertIdentifier(value: unknown, argument: string, maxLength: number): void {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > maxLength) {
    throw new InvalidArgumentError(
      argument,
      `expected 1 to ${maxLength} letters, digits or _, not starting with a digit`,
    );
  }
}

function assertPool(pool: unknown): asserts pool is PostgresPool {
  const candidate = pool as Record<string, unknown> | null;
  if (typeof candidate !== 'object' || candidate === null) {
    throw new InvalidArgumentError('pool', 'expected a node-postgres Pool (new pg.Pool())');
  }
  if (typeof candidate.query !== 'function' || typeof candidate.connect !== 'function') {
    throw new InvalidArgumentError('pool', 'expected a node-postgres Pool (new pg.Pool())');
  }
  // A Client has `query` and `connect` too, but no second connection to LISTEN on.
  if (typeof candidate.escapeIdentifier === 'function') {
    throw new InvalidArgumentError(
      'pool',
      'is a single pg Client; pass a pg Pool, from which the backend can check out a connection to LISTEN on',
    );
  }
}

function closedError(): BackendError {
  return new BackendError('[postgres] the backend is closed', new Error('closed'));
}
