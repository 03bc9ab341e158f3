import { createHash } from 'node:crypto';
import { BackendError, type HandedOff, whenAborted } from '@deadbolt/core';
import type { PostgresPoolClient } from './index.js';

/**
 * How long the listening connection stays checked out after the last waiter left, in ms. A
 * waiter refused again waits again within a round trip; keeping the connection spares a
 * checkout and LISTEN each time, and lets a wait hear of a release that came just before it
 * (`since`). `pool.end()` waits this long at most (`close()` gives the connection back at once).
 */
const LINGER_MS = 2_000;

/** How long the time of a key's last wake-up is kept, for a wait with an earlier `since`. */
const RECENT_MS = 5_000;

/**
 * How long a grant waits for its waiter to wait again before it is dropped (the waiter then asks
 * again). Only a bound on memory: whether a grant is still good is told by its attempt.
 */
const UNCLAIMED_MS = 10_000;

/** The SHA-256 of a key or token's UTF-8 bytes, in hex, as the database's functions name them. */
export function digestOf(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

interface Waiter {
  /** The wait's `since`: it heard nothing from before (a wait without one, nothing at all). */
  since: number;
  /** The token digest and attempt of a waiter that can be handed the lock. */
  grantee: { token: string; attempt: number } | undefined;
  settle(error?: unknown, handedOff?: HandedOff): void;
}

/** What {@link Notifications} needs: a connection to listen on, and the channel to LISTEN to. */
export interface NotificationSource {
  /** Checks a connection out of the user's pool. */
  connect(): Promise<PostgresPoolClient>;
  /** Whether the user has ended the pool: the connection then goes back without lingering. */
  ending(): boolean;
  channel: string;
  /** `LISTEN "<channel>"` */
  listen: string;
}

/**
 * Every waiter of a backend, over one connection that LISTENs to the table's one channel. The
 * connection is checked out of the user's pool when the first waiter arrives and given back
 * {@link LINGER_MS} after the last one left, so it never holds a pool slot, or the process,
 * while nobody waits. Messages name the key (and a grant's token) by SHA-256, so one channel
 * serves every key: 'wake <key>' wakes every waiter of the key, and
 * 'grant <key> <token> <fence> <ttlMs> <afterMs> <attempt>' settles only the waiter of that token
 * and attempt, or is kept for its next wait.
 */
export class Notifications {
  readonly #source: NotificationSource;
  /** Resolves once the connection LISTENs; unset while no connection is checked out. */
  #connection: Promise<PostgresPoolClient> | undefined;
  /** The connection once it LISTENs. */
  #listening: PostgresPoolClient | undefined;
  /** The error handler of each connection checked out and not yet given back. */
  readonly #onError = new Map<PostgresPoolClient, (error: Error) => void>();
  /** When LISTEN took effect (`Date.now()`): a wait with an earlier `since` may have missed one. */
  #listeningSince = Number.POSITIVE_INFINITY;
  /** Waiters by key digest. */
  readonly #waiters = new Map<string, Set<Waiter>>();
  #waiterCount = 0;
  /** When each key last had a 'wake' (`Date.now()`), oldest first. */
  readonly #wokenAt = new Map<string, number>();
  /** Grants whose waiter was not waiting, by `<key> <token>` digests, oldest first. */
  readonly #unclaimed = new Map<string, { handedOff: HandedOff; at: number }>();
  #lingering: NodeJS.Timeout | undefined;
  #closedWith: Error | undefined;

  constructor(source: NotificationSource) {
    this.#source = source;
  }

  /**
   * Resolves on the next 'wake' of `key`, at once for one since `since` (or when the connection
   * began to listen after `since`, so one may have been missed), or with the grant when the lock
   * is (or was, while the caller was not waiting) handed to `grantee`'s attempt. Rejects with
   * `signal.reason` on abort, with `BackendError` when the connection fails or the backend closes.
   */
  wait(
    key: string,
    signal: AbortSignal,
    since: number | undefined,
    grantee?: { token: string; attempt: number },
  ): Promise<HandedOff | undefined> {
    if (this.#closedWith) return Promise.reject(this.#closedWith);
    if (signal.aborted) return Promise.reject(signal.reason);
    const keyDigest = digestOf(key);
    const granteeDigest = grantee && { token: digestOf(grantee.token), attempt: grantee.attempt };
    if (granteeDigest) {
      const id = `${keyDigest} ${granteeDigest.token}`;
      const kept = this.#unclaimed.get(id);
      this.#unclaimed.delete(id);
      // A grant for an earlier attempt is stale: that attempt's refusal came after it.
      if (kept?.handedOff.attempt === granteeDigest.attempt) return Promise.resolve(kept.handedOff);
    }
    const missed =
      since !== undefined &&
      ((this.#wokenAt.get(keyDigest) ?? Number.NEGATIVE_INFINITY) >= since ||
        (this.#listening !== undefined && this.#listeningSince > since));
    if (missed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      let waiters = this.#waiters.get(keyDigest);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(keyDigest, waiters);
      }
      const ofKey = waiters;
      const waiter: Waiter = {
        since: since ?? Number.POSITIVE_INFINITY,
        grantee: granteeDigest,
        settle: (error, handedOff) => {
          if (!ofKey.delete(waiter)) return;
          if (ofKey.size === 0 && this.#waiters.get(keyDigest) === ofKey) {
            this.#waiters.delete(keyDigest);
          }
          stopListening();
          this.#waiterCount -= 1;
          if (this.#waiterCount === 0) this.#linger();
          if (error === undefined) resolve(handedOff);
          else reject(error);
        },
      };
      ofKey.add(waiter);
      this.#waiterCount += 1;
      clearTimeout(this.#lingering);
      const stopListening = whenAborted(signal, () => waiter.settle(signal.reason));
      this.#listen().catch((error: unknown) => waiter.settle(error));
    });
  }

  /** Rejects every waiter (and every later wait) with `error` and gives the connection back. */
  async close(error: Error): Promise<void> {
    this.#closedWith = error;
    clearTimeout(this.#lingering);
    this.#settleAll(error);
    const connection = this.#connection;
    this.#connection = undefined;
    this.#listening = undefined;
    // Destroyed rather than returned: one may be stuck on a database that stopped answering.
    for (const client of [...this.#onError.keys()]) this.#giveBack(client, true);
    await connection?.catch(() => undefined);
  }

  /** The listening connection, checking one out first when there is none. */
  #listen(): Promise<PostgresPoolClient> {
    if (this.#connection !== undefined) return this.#connection;
    const connection = this.#checkOut();
    this.#connection = connection;
    connection.catch(() => {
      if (this.#connection === connection) this.#connection = undefined;
    });
    return connection;
  }

  async #checkOut(): Promise<PostgresPoolClient> {
    let client: PostgresPoolClient;
    try {
      client = await this.#source.connect();
    } catch (error) {
      throw new BackendError('[postgres] cannot check a connection out to LISTEN on', error);
    }
    // The connection failed (the server restarted, say): its waiters learn it, and the next
    // waiter checks out another.
    const onError = (error: Error) => {
      if (this.#listening === client) {
        this.#listening = undefined;
        this.#connection = undefined;
        this.#listeningSince = Number.POSITIVE_INFINITY;
        this.#settleAll(new BackendError('[postgres] the connection that LISTENs failed', error));
      }
      this.#giveBack(client, error);
    };
    this.#onError.set(client, onError);
    client.on('error', onError);
    client.on('notification', this.#onNotification);
    try {
      await client.query(this.#source.listen);
    } catch (error) {
      this.#giveBack(client, error instanceof Error ? error : true);
      throw new BackendError(`[postgres] ${this.#source.listen} failed`, error);
    }
    if (this.#closedWith) {
      this.#giveBack(client, true);
      throw this.#closedWith;
    }
    this.#listening = client;
    this.#listeningSince = Date.now();
    // A release between a waiter's last attempt and now went unheard: those waiters ask again.
    for (const waiters of [...this.#waiters.values()]) {
      for (const waiter of [...waiters]) if (waiter.since < this.#listeningSince) waiter.settle();
    }
    // Every waiter may have left while LISTEN was on its way.
    if (this.#waiterCount === 0) this.#linger();
    return client;
  }

  readonly #onNotification = (message: { channel: string; payload?: string | undefined }) => {
    if (message.channel !== this.#source.channel || message.payload === undefined) return;
    const [kind, keyDigest = '', token = '', ...numbers] = message.payload.split(' ');
    const now = Date.now();
    if (kind === 'wake') {
      this.#wokenAt.delete(keyDigest);
      this.#wokenAt.set(keyDigest, now);
      forgetOlder(this.#wokenAt, now - RECENT_MS, (at) => at);
      for (const waiter of [...(this.#waiters.get(keyDigest) ?? [])]) waiter.settle();
      return;
    }
    const [fence, ttlMs, afterMs, attempt] = numbers.map(Number) as [
      number,
      number,
      number,
      number,
    ];
    if (kind !== 'grant' || ![fence, ttlMs, afterMs, attempt].every(Number.isSafeInteger)) return;
    const handedOff: HandedOff = { ok: true, fence, ttlMs, afterMs, attempt };
    // A grant is news for its waiter only: for everyone else the lock is as taken as before.
    const waiter = [...(this.#waiters.get(keyDigest) ?? [])].find(
      (one) => one.grantee?.token === token,
    );
    if (waiter) {
      // A waiter listens for its latest attempt only: a grant for an earlier one is stale.
      if (waiter.grantee?.attempt === attempt) waiter.settle(undefined, handedOff);
      return;
    }
    this.#unclaimed.set(`${keyDigest} ${token}`, { handedOff, at: now });
    forgetOlder(this.#unclaimed, now - UNCLAIMED_MS, (kept) => kept.at);
  };

  /**
   * No waiter is left: give the connection back after {@link LINGER_MS}, unless one comes. A
   * connection still on its way is given back once it listens (see `#checkOut`).
   */
  #linger(): void {
    clearTimeout(this.#lingering);
    const client = this.#listening;
    if (this.#closedWith || client === undefined) return;
    const giveBack = () => {
      this.#connection = undefined;
      this.#listening = undefined;
      this.#listeningSince = Number.POSITIVE_INFINITY;
      client.query('UNLISTEN *').then(
        () => this.#giveBack(client, false),
        (error: unknown) => this.#giveBack(client, error instanceof Error ? error : true),
      );
    };
    if (this.#source.ending()) {
      giveBack();
      return;
    }
    this.#lingering = setTimeout(giveBack, LINGER_MS);
    this.#lingering.unref();
  }

  /** Returns `client` to the pool (once), destroying it when `destroy` is an error or true. */
  #giveBack(client: PostgresPoolClient, destroy: Error | boolean): void {
    const onError = this.#onError.get(client);
    if (onError === undefined) return;
    this.#onError.delete(client);
    client.removeListener('notification', this.#onNotification);
    client.removeListener('error', onError);
    // A connection being destroyed may still report an error: it must not crash the process.
    if (destroy !== false) client.on('error', ignore);
    client.release(destroy);
  }

  #settleAll(error: Error): void {
    for (const waiters of [...this.#waiters.values()]) {
      for (const waiter of [...waiters]) waiter.settle(error);
    }
  }
}

function ignore(): void {}

/** Drops the entries of an oldest-first map whose time is before `before`. */
function forgetOlder<V>(map: Map<string, V>, before: number, timeOf: (value: V) => number): void {
  for (const [key, value] of map) {
    if (timeOf(value) >= before) return;
    map.delete(key);
  }
}
