import type { AutoExtension } from './acquisition.js';
import type { LockBackend } from './backend.js';
import { BackendError, DeadboltError, LockLostError, LockNotHeldError } from './errors.js';
import type { LockEventBase, LockEventHub } from './events.js';
import { type Lease, leaseEnd, lossPoint, renewalPoint, renewalRetryMs } from './lease.js';
import { inspectSymbol, REDACTED } from './redact.js';
import { assertTtl } from './validation.js';

/** What the manager hands a new {@link Lock}. @internal */
export interface LockGrant {
  backend: LockBackend;
  key: string;
  token: string;
  fence: number;
  /** The TTL the caller asked for. */
  ttlMs: number;
  /**
   * The lease the backend granted, at most `ttlMs` long: shorter for a lock handed over on release
   * (a claim), which the lock then extends to `ttlMs` if it still holds a third of the way in.
   */
  lease: Lease;
  autoExtend: AutoExtension | undefined;
  /** Called once the lock was given back or lost, so local waiters can try at once. */
  onSettled: () => void;
  /**
   * Releases, without waiting, what is left of a lost lease; a later request of the same token
   * waits for it.
   */
  giveBack: () => void;
  /** Where the lock's events go, and what they say about it. */
  events: LockEventHub;
  about: LockEventBase;
}

type LockState = 'held' | 'released' | 'lost';

/** A lock as `lock.toHandle()` gives it, for `locks.resume()` elsewhere. A secret: it holds the token. */
export interface HeldLock {
  /** The lock's key. */
  key: string;
  /** The acquisition's token: whoever has it can release or extend the lease. */
  token: string;
  /** The lock's fence. */
  fence: number;
  /** When the lease ends at the latest, in epoch ms by the clock of the process that made the handle. */
  expiresAt: number;
  /** The TTL the holder renews the lease to. */
  ttlMs: number;
  /** Permits held: 1 for a mutex. */
  weight: number;
  /** Permits the key has in all. */
  limit: number;
}

/**
 * A held lease on a key: a mutex, a semaphore permit or a read/write grant.
 *
 * Its token is a secret of this holder (whoever has it can release or extend the lease), so the
 * printed forms leave it out: `util.inspect`/`console.log` show `token: '[redacted]'` and
 * `JSON.stringify` gives `{ key, fence, expiresAt, held }`. Read `lock.token` to get it.
 *
 * @example
 * ```ts
 * await using lock = await locks.acquire('invoice:42', { ttl: 10_000 });
 * await db.write(invoice, { fence: lock.fence });
 * ```
 */
export class Lock implements AsyncDisposable {
  /** The key this lock holds. */
  readonly key: string;
  /**
   * Fencing token: strictly greater than that of every earlier acquisition of this key.
   * Pass it to the protected resource so it can refuse writes from a stale holder.
   */
  readonly fence: number;

  readonly #backend: LockBackend;
  readonly #token: string;
  /**
   * Created the first time `signal` is read: an AbortController costs microseconds, and most
   * holders never look at the signal.
   */
  #abortController: AbortController | undefined;
  /** Why the lock was lost, once it was. */
  #lossReason: LockLostError | undefined;
  /** How the lock renews its lease in the background; undefined once stopped, or never asked. */
  #autoExtend: AutoExtension | undefined;
  readonly #onSettled: () => void;
  readonly #giveBack: () => void;
  readonly #events: LockEventHub;
  readonly #about: LockEventBase;
  readonly #grantedAt = Date.now();
  /** The lease length the holder wants: what it asked for, or last extended to. */
  #ttlMs: number;
  /** The current lease; at most `#ttlMs` long. */
  #lease: Lease;
  #state: LockState = 'held';
  #lossTimer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;

  /** @internal Created by {@link LockManager}; not meant to be constructed by users. */
  constructor(grant: LockGrant) {
    this.#backend = grant.backend;
    this.key = grant.key;
    this.#token = grant.token;
    this.fence = grant.fence;
    this.#autoExtend = grant.autoExtend;
    this.#onSettled = grant.onSettled;
    this.#giveBack = grant.giveBack;
    this.#events = grant.events;
    this.#about = grant.about;
    this.#ttlMs = grant.ttlMs;
    this.#lease = grant.lease;
    this.#armTimers();
  }

  /**
   * Aborted, with a {@link LockLostError} as its reason, when the lease is lost or can no longer be
   * confirmed. Like {@link held}, reading it judges by the clock: once the loss point has passed,
   * the signal it returns is aborted (and its abort listeners have run) even if the timer that
   * aborts it has not run yet, as on a busy or paused process. A signal kept from an earlier read
   * aborts when that timer runs, or when `signal` or `held` is read next.
   */
  get signal(): AbortSignal {
    this.#loseIfPastLossPoint();
    if (this.#abortController === undefined) {
      this.#abortController = new AbortController();
      if (this.#lossReason !== undefined) this.#abortController.abort(this.#lossReason);
    }
    return this.#abortController.signal;
  }

  /**
   * When the lease ends at the latest, in epoch milliseconds by this process's clock (measured
   * from before the request was sent, so never later than the backend's view). A lock handed over
   * on release starts with a short lease (at most `HANDOFF_LEASE_MS`, 2 s), extended to the TTL
   * asked for a third of the way in if it is still held: `expiresAt` moves out then.
   */
  get expiresAt(): number {
    return leaseEnd(this.#lease);
  }

  /**
   * This acquisition's random 128-bit token (32 hex characters). Printed forms of the lock
   * redact it; reading this property is the one way to get it.
   */
  get token(): string {
    return this.#token;
  }

  /**
   * True until the lock is released or lost. Read against the clock: once the point where
   * `signal` should abort has passed, this is false (and `signal` aborts now) even if the timer
   * that aborts it has not run yet, as after the process was paused (SIGSTOP, a stopped VM) or
   * on a busy machine, when code that was waiting on I/O or on another timer can run first.
   */
  get held(): boolean {
    this.#loseIfPastLossPoint();
    return this.#state === 'held';
  }

  /**
   * What another process needs to go on holding this lock (`locks.resume(handle)`): a scheduler
   * acquires, a worker finishes. It holds the token, so it is a secret: whoever has it can
   * release or extend the lease. Send it only where the token may go, never to logs (which is why
   * `JSON.stringify(lock)` leaves the token out and this is a method of its own). This lock goes
   * on holding too: stop using it (`stopExtending()`) once the handle has moved.
   */
  toHandle(): HeldLock {
    const { key, fence } = this;
    const { weight, limit } = this.#about;
    return {
      key,
      token: this.#token,
      fence,
      expiresAt: this.expiresAt,
      ttlMs: this.#ttlMs,
      weight,
      limit,
    };
  }

  /** What `JSON.stringify(lock)` gives: everything worth logging, without the token. */
  toJSON(): { key: string; fence: number; expiresAt: number; held: boolean } {
    return { key: this.key, fence: this.fence, expiresAt: this.expiresAt, held: this.held };
  }

  /** What `util.inspect(lock)` and `console.log(lock)` print: the token is redacted. */
  [inspectSymbol](
    _depth: number,
    options: object,
    inspect?: (value: unknown, options: object) => string,
  ): string {
    const shown = { ...this.toJSON(), token: REDACTED };
    // Node passes its `inspect`; other printers that honour the symbol may not.
    return `Lock ${inspect ? inspect(shown, options) : JSON.stringify(shown)}`;
  }

  /**
   * Resets the lease to `ttl` ms from now.
   *
   * @param ttl - new lease length in milliseconds, at least 1; by default the TTL the lock was
   * acquired with
   * @throws {@link LockLostError} when the lease was lost; {@link LockNotHeldError} after `release()`;
   * `InvalidArgumentError` for a bad `ttl`, before any I/O (all as rejections)
   */
  async extend(ttl: number = this.#ttlMs): Promise<void> {
    assertTtl(ttl, 'ttl');
    this.#loseIfPastLossPoint();
    if (this.#state === 'released') {
      throw new LockNotHeldError(this.key, 'it was released; acquire it again');
    }
    if (this.#state === 'lost') throw this.#lossReason as LockLostError;
    await this.#renew(ttl, false);
  }

  /**
   * Gives the lock back. Resolves `true` when this call released it, `false` when the lease had
   * already expired, was taken over, was lost (`signal` aborted) or was released before; it never
   * throws for those, even when the backend cannot be reached.
   *
   * @throws {@link BackendError} when the backend cannot be reached while the lock was held (the
   *   lease then ends by its TTL); a `QuorumError` is one
   */
  async release(): Promise<boolean> {
    if (this.#state === 'released') return false;
    this.#loseIfPastLossPoint();
    const wasHeld = this.#state === 'held';
    this.#state = 'released';
    this.#clearTimers();
    try {
      const released = await this.#backend.release({ key: this.key, token: this.#token });
      this.#events.emit('released', () => ({
        ...this.#about,
        fence: this.fence,
        heldMs: Date.now() - this.#grantedAt,
        released: wasHeld && released,
      }));
      return wasHeld && released;
    } catch (caught) {
      const error = wrapBackendError(caught, `release of "${this.key}" failed`);
      this.#events.emit('release-failed', () => ({ ...this.#about, error, during: 'release' }));
      // A lost lock's release only frees early what its TTL ends anyway: no failure to throw.
      if (!wasHeld) return false;
      throw error;
    } finally {
      if (wasHeld) this.#onSettled();
    }
  }

  /**
   * Stops renewing the lease in the background, without releasing it: it then ends by its TTL
   * from the last renewal (`expiresAt`), unless extended by hand. Does nothing to a lock that does
   * not auto-extend, or is no longer held.
   */
  stopExtending(): void {
    if (this.#autoExtend === undefined || this.#state !== 'held') return;
    this.#autoExtend = undefined;
    // A handed-over lease not yet extended to the TTL asked for still is (see `expiresAt`).
    if (this.#lease.ttlMs >= this.#ttlMs) clearTimeout(this.#renewTimer);
  }

  /** Whether the lease is renewed in the background (see {@link Lock.stopExtending}). */
  get extending(): boolean {
    return this.#autoExtend !== undefined && this.#state === 'held';
  }

  /** Releases the lock at the end of an `await using` block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  async #renew(ttlMs: number, automatic: boolean): Promise<void> {
    const requestedAt = Date.now();
    let extended: boolean;
    try {
      extended = await this.#backend.extend({ key: this.key, token: this.#token, ttlMs });
    } catch (caught) {
      const error = wrapBackendError(caught, `extend of "${this.key}" failed`);
      this.#events.emit('extend-failed', () => ({
        ...this.#about,
        fence: this.fence,
        error,
        automatic,
      }));
      throw error;
    }
    // A release or loss while the request was in flight wins over its answer.
    if (this.#state !== 'held') {
      if (this.#state === 'lost') throw this.#lossReason as LockLostError;
      return;
    }
    if (!extended) {
      const error = new LockLostError(this.key, 'the lease expired or was taken over');
      this.#lose(error);
      // What is left of it (on the members of a quorum that still hold it) goes back at once
      // rather than blocking others until its TTL: the backend says the lease is no longer held.
      this.#giveBack();
      throw error;
    }
    this.#ttlMs = ttlMs;
    this.#lease = { startedAt: requestedAt, ttlMs };
    this.#armTimers();
    this.#events.emit('extended', () => ({ ...this.#about, fence: this.fence, ttlMs, automatic }));
  }

  #armTimers(): void {
    this.#clearTimers();
    const now = Date.now();
    this.#lossTimer = setTimeout(
      () => this.#lose(unconfirmed(this.key)),
      lossPoint(this.#lease) - now,
    );
    this.#lossTimer.unref();
    // A lease shorter than the holder wants (a handoff's claim) is extended like an auto-extended one.
    if (this.#autoExtend || this.#lease.ttlMs < this.#ttlMs) {
      this.#scheduleRenewal(renewalPoint(this.#lease, this.#autoExtend?.everyMs) - now);
    }
  }

  #scheduleRenewal(delayMs: number): void {
    this.#renewTimer = setTimeout(
      () => {
        this.#renew(this.#ttlMs, true).catch((error: unknown) => {
          // LockLostError already aborted the signal; anything else is transient, so try again
          // soon: the loss timer aborts the signal if no renewal gets through in time.
          if (this.#state === 'held' && !(error instanceof LockLostError)) {
            this.#scheduleRenewal(renewalRetryMs(this.#lease));
          }
        });
      },
      Math.max(0, delayMs),
    );
    this.#renewTimer.unref();
  }

  /**
   * Past the loss point the lease counts as lost whether or not its timer has run: every reading
   * a holder can make (`held`, `signal`, `extend`, `release`) then gives the same answer.
   */
  #loseIfPastLossPoint(): void {
    if (this.#state === 'held' && Date.now() >= lossPoint(this.#lease)) {
      this.#lose(unconfirmed(this.key));
    }
  }

  #lose(error: LockLostError): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#lossReason = error;
    this.#clearTimers();
    this.#abortController?.abort(error);
    this.#onSettled();
    this.#events.emit('lost', () => ({
      ...this.#about,
      fence: this.fence,
      reason: error,
      heldMs: Date.now() - this.#grantedAt,
    }));
  }

  #clearTimers(): void {
    clearTimeout(this.#lossTimer);
    clearTimeout(this.#renewTimer);
  }
}

function unconfirmed(key: string): LockLostError {
  return new LockLostError(key, 'the lease could not be confirmed before it expires');
}

/** Keeps deadbolt's own errors as they are and wraps anything else in a {@link BackendError}. */
export function wrapBackendError(error: unknown, message: string): DeadboltError {
  return error instanceof DeadboltError ? error : new BackendError(message, error);
}
