/**
 * Every statement the backend sends, for one table. Nothing a caller passes reaches this text:
 * keys, tokens, owners and numbers travel as bound parameters, and the only names spliced in are
 * the schema and table, checked to be plain identifiers (`IDENTIFIER`) and double-quoted.
 *
 * Layout, for a table `t` (by default `deadbolt_locks`):
 *   t          one row per key: `fence`, the last fence granted, and `kept_until`, when the row
 *              may go (an hour after its last lease or queue place ends: see FENCE_GRACE)
 *   t_holders  one row per unexpired holder: `weight`, `expires_at`, `owner`
 *   t_queue    one row per queue place: `position` (arrival in µs, or the order the request
 *              gave), `expires_at`, `renewed_at`, and what to grant it on a handoff
 *   t_lock, t_keep, t_acquire, t_extend, t_release, t_advance_fence   the functions below
 * Keys, tokens and owners are `bytea` (their UTF-8 bytes): text cannot hold the NUL a key may
 * have, and bytes compare the same under every collation, which the listing's cursor relies on.
 *
 * Every change runs inside one PL/pgSQL function call, so each operation is one round trip and
 * one transaction. The function first takes the key's row with `SELECT … FOR UPDATE` (`t_lock`):
 * every operation on a key waits for the one before it to commit, and operations on other keys
 * never wait. In READ COMMITTED (which `t_lock` insists on) each statement after that sees what
 * the one before committed, so every decision is made on the latest state. Time is read with
 * `clock_timestamp()` once the row lock is held: the database's clock, never the client's.
 *
 * @module
 */

/** A schema or table name we accept: it needs no quoting, so no quoting can go wrong. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Longest table name: room for the longest suffix (`_advance_fence`) within 63 bytes. */
export const MAX_TABLE_LENGTH = 48;

/**
 * Written as the table's comment by `migrate()`, which does nothing when it finds it. A later
 * layout gets a new marker and the statements that move a table from this one to it.
 */
export const SCHEMA_MARKER = 'deadbolt locks, layout 1';

/**
 * How long a key's row (and so its fence) outlives its last lease or queue place. After that a
 * sweep may delete it: the next fence of that key is still higher, since fences never fall below
 * the clock in microseconds, and an hour leaves room for a clock that steps back or for fences a
 * quorum advanced past this server's clock. The same rule as the Redis backends' FENCE_GRACE_MS.
 */
const FENCE_GRACE = "interval '1 hour'";

/**
 * `kept_until` is set this much later than needed, so that a busy key rewrites it (an indexed
 * column, whose change costs an index entry) only every few minutes rather than on every call.
 */
const KEEP_SLACK = "interval '5 minutes'";

/** Rows with nothing left but a fence older than FENCE_GRACE that each acquire deletes, at most. */
const SWEEP_PER_ACQUIRE = 2;

/**
 * Ends a transaction whose loss in a crash would cost nothing: a refusal, a renewed queue place, a
 * release that handed nothing over (after a crash the lease is back until it expires, which is
 * safe; any later durable commit makes it durable too). Its commit then does not wait for the
 * disk, which a row lock alone would make it do: on a disk with a 3 ms flush, a hot key's
 * refused waiters would queue behind each other's flushes. Grants, handoffs, extends and fence
 * advances keep the server's `synchronous_commit` (on by default: on disk before the reply).
 */
const NO_FLUSH = "PERFORM set_config('synchronous_commit', 'off', true);";

/** Milliseconds as an interval: `${MS} * n`. */
const MS = "interval '1 millisecond'";

/** The clock in whole microseconds since the epoch: the floor of every fence. */
const MICROS = (time: string) => `floor(extract(epoch FROM ${time}) * 1000000)::bigint`;

/** The names of one table's objects, quoted, and the NOTIFY channel of its releases. */
export interface TableNames {
  /** `"schema"."table"`, or `"table"` without a schema (then `search_path` finds it). */
  table: string;
  holders: string;
  queue: string;
  /** The function named `<table>_<suffix>`, qualified like the table. */
  fn(suffix: string): string;
  /** The index that finds rows to sweep (unqualified: an index lives in its table's schema). */
  keptUntilIndex: string;
  /** The LISTEN channel: `schema.table`, or `table`. */
  channel: string;
}

export function tableNames(schema: string | undefined, table: string): TableNames {
  const qualified = (name: string) =>
    schema === undefined ? `"${name}"` : `"${schema}"."${name}"`;
  return {
    table: qualified(table),
    holders: qualified(`${table}_holders`),
    queue: qualified(`${table}_queue`),
    fn: (suffix) => qualified(`${table}_${suffix}`),
    keptUntilIndex: `"${table}_kept_until"`,
    channel: schema === undefined ? table : `${schema}.${table}`,
  };
}

/** The statements of one table's backend. */
export interface Statements {
  /** Takes the lock that serializes migrations of this table: `$1` its name. */
  migrationLock: string;
  /** The table's comment (`SCHEMA_MARKER` once migrated): `$1` its quoted name. */
  migrationMarker: string;
  /** Creates the tables and functions: run in order, in one transaction. */
  migration: string[];
  /** `$1` key, `$2` token, `$3` ttl ms, `$4` limit, `$5` weight, `$6` owner, `$7` place ttl ms,
   * `$8` order, `$9` handoff ttl ms, `$10` attempt (`$7` to `$10` null when not queued). */
  acquire: string;
  /** `$1` key, `$2` token, `$3` ttl ms → `extended`. */
  extend: string;
  /** `$1` key, `$2` token → `released`. */
  release: string;
  /** `$1` key, `$2` fence. */
  advanceFence: string;
  /** `$1` key → one row per unexpired holder, with the key's fence and queue length. */
  inspect: string;
  /** `$1` cursor (bytes after which to go on), `$2` LIKE pattern (bytes), `$3` limit. */
  list: string;
  listen: string;
}

export function statements(names: TableNames): Statements {
  const { table, holders, queue, fn, keptUntilIndex, channel } = names;
  const lock = fn('lock');
  const keep = fn('keep');
  // The channel is made of checked identifiers and a dot: no quote can be in it.
  const notify = (payload: string) => `PERFORM pg_notify('${channel}', ${payload});`;
  // What a waiter's process hears names the key and token by their SHA-256: a payload of fixed,
  // small size (NOTIFY allows 8000 bytes) whatever bytes or length they have.
  const digest = (bytes: string) => `encode(sha256(${bytes}), 'hex')`;
  return {
    migrationLock: 'SELECT pg_advisory_xact_lock(hashtext($1))',
    migrationMarker: "SELECT obj_description(to_regclass($1), 'pg_class') AS marker",
    migration: [
      `CREATE TABLE IF NOT EXISTS ${table} (
        key bytea PRIMARY KEY,
        fence bigint NOT NULL,
        kept_until timestamptz NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS ${keptUntilIndex} ON ${table} (kept_until)`,
      `CREATE TABLE IF NOT EXISTS ${holders} (
        key bytea NOT NULL,
        token bytea NOT NULL,
        weight bigint NOT NULL,
        expires_at timestamptz NOT NULL,
        owner bytea,
        PRIMARY KEY (key, token)
      )`,
      `CREATE TABLE IF NOT EXISTS ${queue} (
        key bytea NOT NULL,
        token bytea NOT NULL,
        position bigint NOT NULL,
        expires_at timestamptz NOT NULL,
        renewed_at timestamptz NOT NULL,
        weight bigint NOT NULL,
        permit_limit bigint NOT NULL,
        handoff_ttl_ms bigint,
        attempt bigint,
        owner bytea,
        PRIMARY KEY (key, token)
      )`,
      // Locks the row of `p_key` until the transaction ends, creating it first when `p_create`;
      // returns it, or a row of nulls when it does not exist and `p_create` is false.
      `CREATE OR REPLACE FUNCTION ${lock}(p_key bytea, p_create boolean) RETURNS ${table}
      LANGUAGE plpgsql AS $$
      DECLARE
        v_row ${table};
      BEGIN
        -- Under REPEATABLE READ or SERIALIZABLE the statements below would all read the snapshot
        -- taken before the row lock was granted, and decide on stale holders.
        IF current_setting('transaction_isolation') <> 'read committed' THEN
          RAISE EXCEPTION 'deadbolt runs in READ COMMITTED, not %', current_setting('transaction_isolation')
            USING HINT = 'use a pool whose default_transaction_isolation is read committed';
        END IF;
        LOOP
          SELECT * INTO v_row FROM ${table} WHERE key = p_key FOR UPDATE;
          IF FOUND OR NOT p_create THEN
            RETURN v_row;
          END IF;
          -- Another transaction may insert it first (then this waits for it and does nothing), or
          -- a sweep may delete it before the SELECT: the loop takes whichever row is there.
          INSERT INTO ${table} (key, fence, kept_until) VALUES (p_key, 0, clock_timestamp())
          ON CONFLICT (key) DO NOTHING;
        END LOOP;
      END $$`,
      // Keeps the row of p_key (locked) until at least FENCE_GRACE after p_until. PL/pgSQL
      // rather than SQL: it keeps its plan for the session, where a SQL function plans every call.
      `CREATE OR REPLACE FUNCTION ${keep}(p_key bytea, p_until timestamptz) RETURNS void
      LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE ${table} SET kept_until = p_until + ${FENCE_GRACE} + ${KEEP_SLACK}
        WHERE key = p_key AND kept_until < p_until + ${FENCE_GRACE};
      END $$`,
      // Takes p_weight of p_limit permits for p_token (see acquire.lua of the Redis backends for
      // the same rules). With p_place_ttl_ms, the request also takes or renews its queue place
      // and is granted only at the head; without, it is refused while anyone queues.
      `CREATE OR REPLACE FUNCTION ${fn('acquire')}(
        p_key bytea, p_token bytea, p_ttl_ms bigint, p_limit bigint, p_weight bigint, p_owner bytea,
        p_place_ttl_ms bigint, p_order bigint, p_handoff_ttl_ms bigint, p_attempt bigint,
        OUT granted boolean, OUT granted_fence bigint, OUT retry_in_ms bigint)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_lock ${table} := ${lock}(p_key, true);
        -- Initialized in order: the clock is read once the row lock is held.
        v_now timestamptz := clock_timestamp();
        v_used bigint;
        v_earliest timestamptz;
        v_holds boolean;
        v_head_token bytea;
        v_head_position bigint;
        v_own_position bigint;
        v_position bigint;
        v_at_head boolean;
        v_lease_end timestamptz;
      BEGIN
        -- Rows whose fence is an hour past every lease: other keys, and only rows nobody is
        -- working on, so this never waits.
        WITH swept AS (
          DELETE FROM ${table} WHERE key IN (
            SELECT key FROM ${table} WHERE kept_until < v_now AND key <> p_key
            ORDER BY kept_until LIMIT ${SWEEP_PER_ACQUIRE} FOR UPDATE SKIP LOCKED
          ) RETURNING key
        ), swept_places AS (
          DELETE FROM ${queue} WHERE key IN (SELECT key FROM swept)
        )
        DELETE FROM ${holders} WHERE key IN (SELECT key FROM swept);
        DELETE FROM ${holders} WHERE key = p_key AND expires_at <= v_now;
        DELETE FROM ${queue} WHERE key = p_key AND expires_at <= v_now;

        -- A token that already holds asks again because its earlier reply was lost: its own
        -- lease does not count against it, and is replaced.
        SELECT coalesce(sum(weight) FILTER (WHERE token <> p_token), 0),
               min(expires_at) FILTER (WHERE token <> p_token),
               coalesce(bool_or(token = p_token), false)
          INTO v_used, v_earliest, v_holds
          FROM ${holders} WHERE key = p_key;
        SELECT token, position INTO v_head_token, v_head_position
          FROM ${queue} WHERE key = p_key ORDER BY position, token LIMIT 1;
        IF p_place_ttl_ms IS NULL THEN
          v_at_head := v_head_token IS NULL;
        ELSE
          SELECT position INTO v_own_position FROM ${queue} WHERE key = p_key AND token = p_token;
          -- A renewed place keeps its position; a new one goes last, or where p_order puts it.
          v_position := coalesce(v_own_position, p_order, ${MICROS('v_now')});
          v_at_head := v_head_token IS NULL OR v_head_token = p_token
            OR (v_own_position IS NULL AND (v_position, p_token) < (v_head_position, v_head_token));
        END IF;

        -- A holder asking again has already passed the queue.
        IF v_used + p_weight > p_limit OR NOT (v_at_head OR v_holds) THEN
          IF p_place_ttl_ms IS NOT NULL THEN
            INSERT INTO ${queue} (key, token, position, expires_at, renewed_at, weight,
              permit_limit, handoff_ttl_ms, attempt, owner)
            VALUES (p_key, p_token, v_position, v_now + ${MS} * p_place_ttl_ms, v_now, p_weight,
              p_limit, p_handoff_ttl_ms, p_attempt, p_owner)
            ON CONFLICT (key, token) DO UPDATE SET expires_at = excluded.expires_at,
              renewed_at = excluded.renewed_at, weight = excluded.weight,
              permit_limit = excluded.permit_limit, handoff_ttl_ms = excluded.handoff_ttl_ms,
              attempt = excluded.attempt, owner = excluded.owner;
            PERFORM ${keep}(p_key, v_now + ${MS} * p_place_ttl_ms);
          END IF;
          ${NO_FLUSH}
          granted := false;
          retry_in_ms := greatest(1, ceil(extract(epoch FROM v_earliest - v_now) * 1000));
          RETURN;
        END IF;

        DELETE FROM ${queue} WHERE key = p_key AND token = p_token;
        v_lease_end := v_now + ${MS} * p_ttl_ms;
        granted_fence := greatest(v_lock.fence + 1, ${MICROS('v_now')});
        INSERT INTO ${holders} (key, token, weight, expires_at, owner)
        VALUES (p_key, p_token, p_weight, v_lease_end, p_owner)
        ON CONFLICT (key, token) DO UPDATE SET weight = excluded.weight,
          expires_at = excluded.expires_at, owner = excluded.owner;
        UPDATE ${table} SET fence = granted_fence WHERE key = p_key;
        PERFORM ${keep}(p_key, v_lease_end);
        -- The next in line may fit in what is left: let it try now rather than at its next retry.
        IF v_used + p_weight < p_limit AND EXISTS (SELECT FROM ${queue} WHERE key = p_key) THEN
          ${notify(`'wake ' || ${digest('p_key')}`)}
        END IF;
        granted := true;
      END $$`,
      // Resets the lease of p_token to p_ttl_ms from now; false when it no longer holds.
      `CREATE OR REPLACE FUNCTION ${fn('extend')}(p_key bytea, p_token bytea, p_ttl_ms bigint)
      RETURNS boolean LANGUAGE plpgsql AS $$
      DECLARE
        v_lock ${table} := ${lock}(p_key, false);
        v_now timestamptz := clock_timestamp();
      BEGIN
        IF v_lock.key IS NULL THEN
          RETURN false;
        END IF;
        UPDATE ${holders} SET expires_at = v_now + ${MS} * p_ttl_ms
        WHERE key = p_key AND token = p_token AND expires_at > v_now;
        IF NOT FOUND THEN
          ${NO_FLUSH}
          RETURN false;
        END IF;
        PERFORM ${keep}(p_key, v_now + ${MS} * p_ttl_ms);
        RETURN true;
      END $$`,
      // Gives back what p_token holds and its queue place. When that freed something, hands the
      // lock to the head of the queue (and those behind, while they fit) if they asked for it and
      // renewed their place within the last half of its TTL, notifying
      // 'grant <key> <token> <fence> <ttlMs> <afterMs> <attempt>' for each (key and token as
      // SHA-256 in hex); then 'wake <key>' unless the handoffs took all there was. Returns true
      // when p_token held an unexpired lease.
      `CREATE OR REPLACE FUNCTION ${fn('release')}(p_key bytea, p_token bytea)
      RETURNS boolean LANGUAGE plpgsql AS $$
      DECLARE
        v_lock ${table} := ${lock}(p_key, false);
        v_now timestamptz := clock_timestamp();
        v_released boolean;
        v_used bigint;
        v_limit bigint;
        v_fence bigint := v_lock.fence;
        v_place ${queue};
        v_lease_end timestamptz;
      BEGIN
        IF v_lock.key IS NULL THEN
          RETURN false;
        END IF;
        -- A lease that ran out was no longer held: giving it back frees nothing.
        DELETE FROM ${holders} WHERE key = p_key AND token = p_token
        RETURNING expires_at > v_now INTO v_released;
        v_released := coalesce(v_released, false);
        DELETE FROM ${queue} WHERE key = p_key AND token = p_token;
        IF NOT (v_released OR FOUND) THEN
          ${NO_FLUSH}
          RETURN false;
        END IF;

        DELETE FROM ${holders} WHERE key = p_key AND expires_at <= v_now;
        DELETE FROM ${queue} WHERE key = p_key AND expires_at <= v_now;
        SELECT coalesce(sum(weight), 0) INTO v_used FROM ${holders} WHERE key = p_key;
        FOR v_place IN SELECT * FROM ${queue} WHERE key = p_key ORDER BY position, token LOOP
          -- A waiter that stopped renewing its place may have died: it keeps its place until it
          -- runs out, but is not handed a lease it may never give back.
          EXIT WHEN v_place.handoff_ttl_ms IS NULL
            OR v_now - v_place.renewed_at > (v_place.expires_at - v_place.renewed_at) / 2
            OR v_used + v_place.weight > v_place.permit_limit;
          v_limit := v_place.permit_limit;
          v_used := v_used + v_place.weight;
          v_fence := greatest(v_fence + 1, ${MICROS('v_now')});
          v_lease_end := greatest(v_lease_end, v_now + ${MS} * v_place.handoff_ttl_ms);
          INSERT INTO ${holders} (key, token, weight, expires_at, owner)
          VALUES (p_key, v_place.token, v_place.weight, v_now + ${MS} * v_place.handoff_ttl_ms,
            v_place.owner)
          ON CONFLICT (key, token) DO UPDATE SET weight = excluded.weight,
            expires_at = excluded.expires_at, owner = excluded.owner;
          DELETE FROM ${queue} WHERE key = p_key AND token = v_place.token;
          ${notify(`concat_ws(' ', 'grant', ${digest('p_key')}, ${digest('v_place.token')},
            v_fence, v_place.handoff_ttl_ms,
            floor(extract(epoch FROM v_now - v_place.renewed_at) * 1000), v_place.attempt)`)}
        END LOOP;
        IF v_limit IS NULL THEN
          ${NO_FLUSH}
        ELSE
          UPDATE ${table} SET fence = v_fence WHERE key = p_key;
          PERFORM ${keep}(p_key, v_lease_end);
        END IF;
        IF v_limit IS NULL OR v_used < v_limit THEN
          ${notify(`'wake ' || ${digest('p_key')}`)}
        END IF;
        RETURN v_released;
      END $$`,
      // Makes every later fence of p_key exceed p_fence (a quorum writes its winning fence back).
      `CREATE OR REPLACE FUNCTION ${fn('advance_fence')}(p_key bytea, p_fence bigint)
      RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM ${lock}(p_key, true);
        UPDATE ${table} SET fence = greatest(fence, p_fence) WHERE key = p_key;
        PERFORM ${keep}(p_key, clock_timestamp());
      END $$`,
      `COMMENT ON TABLE ${table} IS '${SCHEMA_MARKER}'`,
    ],
    acquire: `SELECT granted, granted_fence AS fence, retry_in_ms
      FROM ${fn('acquire')}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    extend: `SELECT ${fn('extend')}($1, $2, $3) AS extended`,
    release: `SELECT ${fn('release')}($1, $2) AS released`,
    advanceFence: `SELECT ${fn('advance_fence')}($1, $2)`,
    // One statement reads one snapshot: no lock needed. Lease left is rounded down.
    inspect: `SELECT l.fence, h.token, h.weight, h.owner,
        floor(extract(epoch FROM h.expires_at - statement_timestamp()) * 1000) AS ttl_ms,
        (SELECT count(*) FROM ${queue} q
          WHERE q.key = l.key AND q.expires_at > statement_timestamp()) AS queued
      FROM ${table} l JOIN ${holders} h ON h.key = l.key
      WHERE l.key = $1 AND h.expires_at > statement_timestamp()`,
    // Keyset pagination: keys in byte order after the cursor, so a page costs what it returns.
    list: `SELECT l.key FROM ${table} l
      WHERE l.key > $1 AND l.key LIKE $2
        AND (EXISTS (SELECT FROM ${holders} h
              WHERE h.key = l.key AND h.expires_at > statement_timestamp())
          OR EXISTS (SELECT FROM ${queue} q
              WHERE q.key = l.key AND q.expires_at > statement_timestamp()))
      ORDER BY l.key LIMIT $3`,
    listen: `LISTEN "${channel}"`,
  };
}

/**
 * A LIKE pattern on bytes that every key matching `glob` matches: `*` is `%`, `?` (one
 * character, one to four bytes) is `_%`, and every other character is itself, with LIKE's `%`,
 * `_` and `\` escaped by `\`.
 */
export function likePattern(glob: string): Buffer {
  let pattern = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index] as string;
    if (char === '*') pattern += '%';
    else if (char === '?') pattern += '_%';
    else {
      const literal = char === '\\' && index + 1 < glob.length ? glob[++index] : char;
      pattern += (literal as string).replace(/[%_\\]/, '\\$&');
    }
  }
  return Buffer.from(pattern, 'utf8');
}
