import { randomFillSync } from 'node:crypto';
import { whenAborted } from './abort-fanout.js';
import type {
  AcquireGranted,
  AcquireRequest,
  AcquireResult,
  HandedOff,
  LockBackend,
} from './backend.js';
import { InvalidArgumentError, LockTimeoutError } from './errors.js';
import { LocalQueue, type Ticket } from './local-queue.js';
import { Lock, lossPoint, wrapBackendError } from './lock.js';
import {
  assertBackend,
  assertBoolean,
  assertFunction,
  assertKey,
  assertNonNegativeDuration,
  assertOptions,
  assertPositiveDuration,
  assertPositiveInteger,
  assertSignal,
  assertTtl,
} from './validation.js';

/** Options of {@link LockManager.acquire} and the other waiting calls. */
export interface AcquireOptions {
  /**
   * Lease length in milliseconds, at least 1 (`MIN_TTL_MS`); backends round a fraction up to a
   * whole millisecond. @default 30_000 (or `defaults.ttl`)
   */
  ttl?: number;
  /** How long to wait for the lock, in milliseconds, before a {@link LockTimeoutError}. @default 10_000 (or `defaults.wait`) */
  wait?: number;
  /** Cancels waiting; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Renew the lease in the background until release. @default false for `acquire`, true for `withLock` */
  autoExtend?: boolean;
  /**
   * Wait in arrival order across every process: a place in the backend's queue, renewed while
   * waiting, and on a backend that hands off (the Redis and memory backends), the lock handed
   * over on release with no further request. `false` races for the lock when it frees up
   * instead: no queue place, and a request after every release a waiter hears of.
   * @default true (or `defaults.fair`, or the primitive's `fair`)
   */
  fair?: boolean;
}

/** Options of {@link LockManager.tryAcquire}: one attempt, so no `wait` and no queue place. */
export type TryAcquireOptions = Omit<AcquireOptions, 'wait' | 'fair'>;

/** Options of a semaphore's calls: {@link AcquireOptions} plus how many permits to take. */
export interface PermitOptions extends AcquireOptions {
  /** Permits to take at once, from 1 to the semaphore's `limit`. @default 1 */
  weight?: number;
}

/** Options of a semaphore's `tryAcquire`. */
export type TryPermitOptions = Omit<PermitOptions, 'wait'>;

/** Defaults applied to every call of one {@link LockManager}. */
export interface LockDefaults {
  /** Lease length in milliseconds (see {@link AcquireOptions.ttl}). @default 30_000 */
  ttl?: number;
  /** @default 10_000 */
  wait?: number;
  /** Auto-extension for `acquire` and `tryAcquire` (`withLock` always extends unless told not to). @default false */
  autoExtend?: boolean;
  /** Arrival-order waiting for every waiting call (see {@link AcquireOptions.fair}). @default true */
  fair?: boolean;
}

/** How a waiter retries when the backend cannot wake it (or as a safety net when it can). */
export interface BackoffOptions {
  /** First retry delay in milliseconds; doubles per attempt, with jitter. @default 25 */
  initialMs?: number;
  /** Largest retry delay in milliseconds. @default 1_000 */
  maxMs?: number;
}

/** Options of {@link LockManager}. */
export interface LockManagerOptions {
  /** Where leases live: `MemoryBackend`, `IoredisBackend`, `NodeRedisBackend`, `quorum([...])`, … */
  backend: LockBackend;
  /** Defaults for every call. */
  defaults?: LockDefaults;
  /** Retry timing while waiting. */
  backoff?: BackoffOptions;
}

/** Options of {@link LockManager.semaphore}. */
export interface SemaphoreOptions {
  /** Permits in all. */
  limit: number;
  /** Grant permits in arrival order (see {@link AcquireOptions.fair}). @default true (or `defaults.fair`) */
  fair?: boolean;
}

/** Options of {@link LockManager.readWriteLock}. */
export interface ReadWriteLockOptions {
  /**
   * Readers too wait in arrival order. Writers always queue, so a waiting writer blocks new
   * readers either way. @default true (or `defaults.fair`)
   */
  fair?: boolean;
}

/** One side of a {@link ReadWriteLock}; every grant is a {@link Lock}. */
export interface LockHandle {
  /** Waits up to `options.wait` ms. */
  acquire(options?: AcquireOptions): Promise<Lock>;
  /** One attempt; null when it cannot be granted now. */
  tryAcquire(options?: TryAcquireOptions): Promise<Lock | null>;
  /** Runs `fn` holding the grant (auto-extended), then gives it back. */
  withLock<T>(fn: (lock: Lock) => Promise<T> | T, options?: AcquireOptions): Promise<T>;
}

/** A read-write lock on one key: readers share, a writer is exclusive. */
export interface ReadWriteLock {
  /** The lock's key. */
  readonly key: string;
  /** Shared grants; new readers wait while a writer waits. */
  readonly read: LockHandle;
  /** Exclusive grants, in arrival order. */
  readonly write: LockHandle;
}

/** A counting semaphore on one key; every grant is a {@link Lock}. */
export interface Semaphore {
  /** The semaphore's key. */
  readonly key: string;
  /** Permits in all. */
  readonly limit: number;
  /** Waits for `weight` permits (1 by default). */
  acquire(options?: PermitOptions): Promise<Lock>;
  /** One attempt; null when not enough permits are free. */
  tryAcquire(options?: TryPermitOptions): Promise<Lock | null>;
  /** Runs `fn` holding the permits (auto-extended), then gives them back. */
  withPermit<T>(fn: (lock: Lock) => Promise<T> | T, options?: PermitOptions): Promise<T>;
}

const DEFAULT_TTL_MS = 30_000;
const DEFAULT_WAIT_MS = 10_000;
const ACQUIRE_OPTIONS = ['ttl', 'wait', 'signal', 'autoExtend', 'fair'] as const;
/**
 * How long a waiter's queue place lasts without a renewing attempt; waiters attempt at least
 * every quarter of it. This bounds how long a waiter that died can hold up the ones behind it.
 */
export const QUEUE_PLACE_TTL_MS = 2_000;
/**
 * The longest lease a waiter asks to be handed on release (a claim): the waiter extends it to its
 * TTL once it holds the lock, if it still does a third of the way in. A waiter that died while
 * queued, after its last renewal, so holds up the ones behind it for this long at most.
 */
export const HANDOFF_LEASE_MS = 2_000;
/**
 * Permits of a read-write lock: readers take 1, a writer takes all. Large enough that readers
 * never run out, small enough for every backend's integer arithmetic.
 */
const READ_WRITE_LIMIT = 1_000_000;

/** What kind of lock a call is on: the one primitive with other numbers. */
interface Primitive {
  key: string;
  limit: number;
  /** The primitive's own fairness; calls and defaults fill in when undefined. */
  fair: boolean | undefined;
  /** Writers always queue so that a waiting writer blocks new readers. */
  alwaysQueue: boolean;
}
const TRY_OPTIONS = ['ttl', 'signal', 'autoExtend'] as const;
/** The outcome of an attempt the manager skipped (see `behindLocalGrant`): wait, with no hint. */
const NOT_ASKED: AcquireResult = { ok: false };

interface ResolvedCall {
  key: string;
  limit: number;
  weight: number;
  ttlMs: number;
  waitMs: number;
  signal: AbortSignal | undefined;
  autoExtend: boolean;
  /** Whether waiting takes a place in the backend's arrival-order queue. */
  queued: boolean;
  /** Whether the place asks to be handed the lock on release (queued, on a backend that can tell). */
  handoff: boolean;
}

/**
 * Acquires locks on one backend: waiting with wake-ups and backoff, auto-extension, fencing.
 *
 * Bad input fails with {@link InvalidArgumentError} before any I/O. The calls that return a
 * promise (`acquire`, `tryAcquire`, `withLock` and those of semaphores and read-write locks)
 * reject with it and never throw; the constructor, `semaphore()` and `readWriteLock()` throw it.
 *
 * @example
 * ```ts
 * const locks = new LockManager({ backend: new IoredisBackend(redis) });
 * await locks.withLock('report:daily', async (lock) => {
 *   await buildReport({ fence: lock.fence, signal: lock.signal });
 * });
 * ```
 */
export class LockManager {
  /** The backend leases live in. */
  readonly backend: LockBackend;
  readonly #defaults: Required<LockDefaults>;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  readonly #queue = new LocalQueue();

  constructor(options: LockManagerOptions) {
    assertOptions(options, 'options', ['backend', 'defaults', 'backoff']);
    if (options === undefined) throw new InvalidArgumentError('options', 'expected { backend }');
    assertBackend(options.backend, 'options.backend');
    assertOptions(options.defaults, 'options.defaults', ['ttl', 'wait', 'autoExtend', 'fair']);
    assertOptions(options.backoff, 'options.backoff', ['initialMs', 'maxMs']);
    const {
      ttl = DEFAULT_TTL_MS,
      wait = DEFAULT_WAIT_MS,
      autoExtend = false,
      fair = true,
    } = options.defaults ?? {};
    assertTtl(ttl, 'options.defaults.ttl');
    assertNonNegativeDuration(wait, 'options.defaults.wait');
    assertBoolean(autoExtend, 'options.defaults.autoExtend');
    assertBoolean(fair, 'options.defaults.fair');
    const { initialMs = 25, maxMs = 1_000 } = options.backoff ?? {};
    assertPositiveDuration(initialMs, 'options.backoff.initialMs');
    assertPositiveDuration(maxMs, 'options.backoff.maxMs');
    if (maxMs < initialMs) {
      throw new InvalidArgumentError(
        'options.backoff.maxMs',
        'must be >= options.backoff.initialMs',
      );
    }
    this.backend = options.backend;
    this.#defaults = { ttl, wait, autoExtend, fair };
    this.#backoffInitialMs = initialMs;
    this.#backoffMaxMs = maxMs;
  }

  /**
   * Waits up to `options.wait` ms for the lock on `key`.
   *
   * @param key - the lock's name (1 to 512 UTF-8 bytes)
   * @throws {@link LockTimeoutError} when the wait runs out; the signal's reason when aborted;
   * {@link InvalidArgumentError} for bad input (all as rejections)
   */
  acquire(key: string, options?: AcquireOptions): Promise<Lock> {
    return this.#mutex(key).acquire(options);
  }

  /**
   * One attempt at the lock on `key`: resolves `null` at once when it is held.
   *
   * @param key - the lock's name
   */
  tryAcquire(key: string, options?: TryAcquireOptions): Promise<Lock | null> {
    return this.#mutex(key).tryAcquire(options);
  }

  /**
   * Runs `fn` holding the lock on `key` with auto-extension on, and always releases it.
   * Returns what `fn` returns and rethrows what it throws, unchanged. A failed release never
   * hides `fn`'s outcome: the lease then ends by its TTL.
   *
   * @param fn - the critical section; watch `lock.signal` to stop if the lease is lost
   */
  withLock<T>(
    key: string,
    fn: (lock: Lock) => Promise<T> | T,
    options?: AcquireOptions,
  ): Promise<T> {
    return this.#mutex(key).withLock(fn, options);
  }

  /**
   * A counting semaphore of `limit` permits on `key`.
   *
   * @example
   * ```ts
   * const pool = locks.semaphore('gpu', { limit: 4 });
   * await pool.withPermit(() => render(job));
   * ```
   */
  semaphore(key: string, options: SemaphoreOptions): Semaphore {
    assertKey(key);
    assertOptions(options, 'options', ['limit', 'fair']);
    assertPositiveInteger(options?.limit, 'options.limit');
    if (options.fair !== undefined) assertBoolean(options.fair, 'options.fair');
    const { limit } = options;
    const primitive: Primitive = { key, limit, fair: options.fair, alwaysQueue: false };
    const handleOf = (weight: number) => this.#handle(primitive, weight);
    return {
      key,
      limit,
      acquire: (permitOptions) =>
        rejectOnThrow(() => {
          const [weight, rest] = this.#splitWeight(permitOptions, limit);
          return handleOf(weight).acquire(rest);
        }),
      tryAcquire: (permitOptions) =>
        rejectOnThrow(() => {
          const [weight, rest] = this.#splitWeight(permitOptions, limit);
          return handleOf(weight).tryAcquire(rest);
        }),
      withPermit: (fn, permitOptions) =>
        rejectOnThrow(() => {
          const [weight, rest] = this.#splitWeight(permitOptions, limit);
          return handleOf(weight).withLock(fn, rest);
        }),
    };
  }

  /**
   * A read-write lock on `key`: any number of readers share it, a writer holds it alone. Writers
   * wait in arrival order and a waiting writer blocks new readers, so a steady stream of readers
   * cannot starve writers. Use a key of its own: a mutex or semaphore on the same key would
   * count its permits differently.
   *
   * @example
   * ```ts
   * const config = locks.readWriteLock('config');
   * const value = await config.read.withLock(() => load());
   * await config.write.withLock(() => save(next));
   * ```
   */
  readWriteLock(key: string, options?: ReadWriteLockOptions): ReadWriteLock {
    assertKey(key);
    assertOptions(options, 'options', ['fair']);
    if (options?.fair !== undefined) assertBoolean(options.fair, 'options.fair');
    const limit = READ_WRITE_LIMIT;
    return {
      key,
      read: this.#handle({ key, limit, fair: options?.fair, alwaysQueue: false }, 1),
      write: this.#handle({ key, limit, fair: true, alwaysQueue: true }, limit),
    };
  }

  #mutex(key: string): LockHandle {
    return this.#handle({ key, limit: 1, fair: undefined, alwaysQueue: false }, 1);
  }

  /** The three calls on one primitive, validating their options before any I/O. */
  #handle(primitive: Primitive, weight: number): LockHandle {
    return {
      acquire: (options) =>
        rejectOnThrow(() => this.#acquireWaiting(this.#resolve(primitive, weight, options, false))),
      tryAcquire: (options) =>
        rejectOnThrow(() => {
          assertOptions(options, 'options', TRY_OPTIONS);
          const call = this.#resolve(primitive, weight, options, false);
          return this.#attemptOnce({ ...call, queued: false, handoff: false });
        }),
      withLock: (fn, options) =>
        rejectOnThrow(() => {
          assertFunction(fn, 'fn');
          return this.#runHolding(this.#resolve(primitive, weight, options, true), fn);
        }),
    };
  }

  #splitWeight<T extends { weight?: number }>(
    options: T | undefined,
    limit: number,
  ): [number, Omit<T, 'weight'> | undefined] {
    if (options === undefined) return [1, undefined];
    assertOptions(options, 'options', [...ACQUIRE_OPTIONS, 'weight']);
    const { weight = 1, ...rest } = options;
    assertPositiveInteger(weight, 'options.weight');
    if (weight > limit) {
      throw new InvalidArgumentError('options.weight', `${weight} is more than the limit ${limit}`);
    }
    return [weight, rest];
  }

  #resolve(
    primitive: Primitive,
    weight: number,
    options: AcquireOptions | undefined,
    autoExtendByDefault: boolean,
  ): ResolvedCall {
    const { key, limit } = primitive;
    assertKey(key);
    assertOptions(options, 'options', ACQUIRE_OPTIONS);
    const {
      ttl = this.#defaults.ttl,
      wait = this.#defaults.wait,
      signal,
      autoExtend = autoExtendByDefault || this.#defaults.autoExtend,
      fair = primitive.fair ?? this.#defaults.fair,
    }: AcquireOptions = options ?? {};
    assertTtl(ttl, 'options.ttl');
    assertNonNegativeDuration(wait, 'options.wait');
    if (signal !== undefined) assertSignal(signal, 'options.signal');
    assertBoolean(autoExtend, 'options.autoExtend');
    assertBoolean(fair, 'options.fair');
    const queued = primitive.alwaysQueue || fair;
    const handoff = queued && this.backend.waitForRelease !== undefined;
    return { key, limit, weight, ttlMs: ttl, waitMs: wait, signal, autoExtend, queued, handoff };
  }

  async #runHolding<T>(call: ResolvedCall, fn: (lock: Lock) => Promise<T> | T): Promise<T> {
    const lock = await this.#acquireWaiting(call);
    let result: T;
    try {
      result = await fn(lock);
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
    await lock.release().catch(() => undefined);
    return result;
  }

  async #attemptOnce(call: ResolvedCall): Promise<Lock | null> {
    call.signal?.throwIfAborted();
    const token = newToken();
    const requestedAt = Date.now();
    const result = await this.#tryBackend(call, token);
    return result.ok ? this.#grant(call, token, result, requestedAt) : null;
  }

  async #acquireWaiting(call: ResolvedCall): Promise<Lock> {
    const { key, signal } = call;
    signal?.throwIfAborted();
    const startedAt = Date.now();
    const deadline = startedAt + call.waitMs;
    const token = newToken();
    const ticket = this.#queue.enter(key);
    let granted = false;
    let stopWaiting: (() => void) | undefined;
    try {
      // First in line (the usual case) needs no timer, race or controller to wait for its turn.
      if (!ticket.atHead && !(await this.#waitUntil(ticket.turn, deadline, signal))) {
        throw new LockTimeoutError(key, Date.now() - startedAt);
      }
      // Next in line right behind a grant of this manager that leaves no room for this request:
      // that holder's release (or loss) wakes this ticket, and asking before it would only be
      // refused. Queued (fair) waiters still ask at once, to take their place in the backend's queue.
      let skipAttempt =
        !call.queued &&
        ticket.behindLocalGrant !== undefined &&
        ticket.behindLocalGrant + call.weight > call.limit;
      // The last request that reached the backend, counting from 1, and when it was sent: a grant
      // handed over on release answers one attempt, and its lease began after that attempt left.
      let attempt = 0;
      let lastSentAt = startedAt;
      for (let round = 0; ; round++) {
        const requestedAt = Date.now();
        let result: AcquireResult = NOT_ASKED;
        if (skipAttempt) {
          skipAttempt = false;
        } else {
          ticket.forgetWakeups();
          attempt += 1;
          lastSentAt = requestedAt;
          const pending = this.#tryBackend(call, token, attempt);
          // The last wait's timers and listeners go only once this attempt is on its way: after a
          // wake-up, the request leaves first. From here on, a local release is kept for the next wait.
          stopWaiting?.();
          stopWaiting = undefined;
          result = await pending;
        }
        const lock = result.ok ? this.#grant(call, token, result, requestedAt) : null;
        if (lock) {
          granted = true;
          return lock;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new LockTimeoutError(key, Date.now() - startedAt);
        const delay = Math.min(
          this.#backoffDelay(round),
          // A grant that came back too late was given back at once: try again right away.
          (result.ok ? 0 : result.retryInMs) ?? remaining,
          remaining,
          // Attempts renew the queue place: attempt often enough that it never runs out.
          call.queued ? QUEUE_PLACE_TTL_MS / 4 : Number.POSITIVE_INFINITY,
        );
        const wait = this.#armWakeUps(
          call,
          token,
          attempt,
          ticket,
          Math.max(1, delay),
          requestedAt,
        );
        stopWaiting = wait.stop;
        const handedOff = await wait.woken;
        // Every attempt before the last was answered with a refusal after its place was renewed by
        // the next: a grant for one of those is stale (its lease had ended by then), and only a
        // grant for the last attempt can still hold. Backends already drop stale grants; this
        // check keeps a backend that does not from handing out a phantom lock.
        if (handedOff?.attempt === attempt) {
          const handedLock = this.#grant(call, token, handedOff, lastSentAt + handedOff.afterMs);
          if (handedLock) {
            granted = true;
            return handedLock;
          }
        }
      }
    } finally {
      stopWaiting?.();
      if (granted) ticket.leaveGranted(call.weight);
      else ticket.leave();
      // Give up the queue place at once so those behind need not wait for it to run out.
      if (call.queued && !granted) this.backend.release({ key, token }).catch(() => undefined);
    }
  }

  /**
   * One acquire request, the `attempt`-th of its acquisition; a plain function so that, without a
   * signal, no async frame wraps it.
   */
  #tryBackend(call: ResolvedCall, token: string, attempt = 1): Promise<AcquireResult> {
    const { key, limit, weight, ttlMs, signal } = call;
    const request: AcquireRequest = { key, token, ttlMs, limit, weight };
    if (call.queued) {
      request.queueTtlMs = QUEUE_PLACE_TTL_MS;
      if (call.handoff) request.handoff = { attempt, ttlMs: Math.min(ttlMs, HANDOFF_LEASE_MS) };
    }
    const onFailure = (error: unknown): never => {
      // The request may have been applied before the reply was lost: give back whatever the
      // token might hold so it does not block others until its TTL runs out.
      this.backend.release({ key, token }).catch(() => undefined);
      throw wrapBackendError(error, `acquire of "${key}" failed`);
    };
    let sent: Promise<AcquireResult>;
    try {
      sent = this.backend.acquire(request).catch(onFailure);
    } catch (error) {
      // A backend that throws instead of rejecting.
      sent = Promise.reject(error).catch(onFailure);
    }
    if (signal === undefined) return sent;
    return this.#raceAbort(sent, signal, key, token);
  }

  /** An abort must not wait for a request stuck on a slow connection. */
  async #raceAbort(
    attempt: Promise<AcquireResult>,
    signal: AbortSignal,
    key: string,
    token: string,
  ): Promise<AcquireResult> {
    const stop = new AbortController();
    try {
      return await Promise.race([attempt, rejectOnAbort(signal, stop.signal)]);
    } catch (error) {
      if (signal.aborted) {
        // The request may still be granted after the abort: give that grant back.
        attempt.then(
          (late) => late.ok && this.backend.release({ key, token }).catch(() => undefined),
          () => undefined,
        );
      }
      throw error;
    } finally {
      stop.abort(STOPPED);
    }
  }

  /**
   * The lock for a grant, or null when its reply came so late that the lease is already past its
   * loss point: a lock that is lost on arrival would only mislead the caller, so the grant is
   * given back and counts as refused.
   */
  #grant(
    call: ResolvedCall,
    token: string,
    granted: AcquireGranted,
    requestedAt: number,
  ): Lock | null {
    if (Date.now() >= lossPoint(requestedAt, granted.ttlMs)) {
      // Only the attempt being answered can hold this token's lease or place now: giving it back
      // cannot take a place that a later attempt made.
      this.backend.release({ key: call.key, token }).catch(() => undefined);
      return null;
    }
    return new Lock({
      backend: this.backend,
      key: call.key,
      token,
      fence: granted.fence,
      ttlMs: call.ttlMs,
      leaseMs: granted.ttlMs,
      requestedAt,
      autoExtend: call.autoExtend,
      onSettled: () => this.#queue.notifyReleased(call.key),
    });
  }

  /** Full-jitter exponential backoff: spreads retries so waiters do not collide. */
  #backoffDelay(round: number): number {
    const ceiling = Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** Math.min(round, 30));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  /** Resolves true when `promise` settles before `deadline`, false at the deadline; rejects on abort. */
  async #waitUntil(
    promise: Promise<void>,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const stop = new AbortController();
    try {
      return await Promise.race([
        promise.then(() => true),
        sleep(Math.max(0, deadline - Date.now()), stop.signal).then(() => false),
        ...(signal ? [rejectOnAbort(signal, stop.signal)] : []),
      ]);
    } finally {
      stop.abort(STOPPED);
    }
  }

  /**
   * Arms every wake-up: `woken` settles on whichever comes first of a release the backend
   * reports, a local release and the backoff delay (or rejects on abort), with the grant when the
   * backend handed the lock to `token`; `stop` disarms them all.
   */
  #armWakeUps(
    call: ResolvedCall,
    token: string,
    attempt: number,
    ticket: Ticket,
    delayMs: number,
    lastAttemptAt: number,
  ): { woken: Promise<HandedOff | undefined>; stop: () => void } {
    const { key, signal } = call;
    let timer: NodeJS.Timeout | undefined;
    const wakeUps: Promise<HandedOff | undefined>[] = [
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(undefined), delayMs);
      }),
    ];
    // A waiter that asked for a handoff hears of a local release from the backend, with the
    // grant: asking on its own as well would only make the backend grant it a second time.
    if (!call.handoff) wakeUps.push(ticket.nextLocalRelease());
    let backendWait: AbortController | undefined;
    if (this.backend.waitForRelease) {
      const controller = new AbortController();
      backendWait = controller;
      const done = () => {
        backendWait = undefined;
      };
      wakeUps.push(
        this.backend
          .waitForRelease({
            key,
            signal: controller.signal,
            // A release that came while the attempt was under way must still wake us.
            since: lastAttemptAt,
            ...(call.handoff ? { handoff: { token, attempt } } : {}),
          })
          .then(
            (value) => {
              done();
              return call.handoff ? asHandedOff(value) : undefined;
            },
            (error: unknown) => {
              done();
              // Our own abort (another wake-up won) is not a failure.
              if (controller.signal.aborted) return undefined;
              throw wrapBackendError(error, `waiting for "${key}" failed`);
            },
          ),
      );
    }
    let stopAbortListener: (() => void) | undefined;
    if (signal) {
      wakeUps.push(
        new Promise((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          else stopAbortListener = whenAborted(signal, () => reject(signal.reason));
        }),
      );
    }
    return {
      woken: Promise.race(wakeUps),
      // Everything is undone directly: an abort would dispatch an event, which costs tens of
      // microseconds on the path of every wake-up. Only a backend wait still pending is aborted.
      stop: () => {
        // A local release that comes after this must wake the next wait, not this finished one.
        ticket.stopListening();
        clearTimeout(timer);
        stopAbortListener?.();
        backendWait?.abort(STOPPED);
      },
    };
  }
}

/**
 * Calls `start` and turns a synchronous throw (bad input, found before any I/O) into a rejection:
 * a call that returns a promise reports every failure through it, so a caller's `.catch()` sees
 * it. Not an async function, so that a valid call gets no extra promise.
 */
function rejectOnThrow<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** What a backend's wait resolved with, when it is a grant (a backend may resolve with anything). */
function asHandedOff(value: unknown): HandedOff | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { ok, fence, ttlMs, afterMs, attempt } = value as Partial<HandedOff>;
  const valid =
    ok === true &&
    Number.isSafeInteger(fence) &&
    Number.isSafeInteger(attempt) &&
    typeof ttlMs === 'number' &&
    ttlMs > 0 &&
    typeof afterMs === 'number' &&
    afterMs >= 0;
  return valid ? (value as HandedOff) : undefined;
}

/**
 * The reason of the manager's own internal aborts (a race was won, a wait is over). Allocated once:
 * `abort()` without a reason builds a DOMException, stack trace included, on every call.
 */
const STOPPED = new Error('stopped');

const TOKEN_BYTES = 16;
/**
 * Random bytes for tokens, drawn from node:crypto's CSPRNG in bulk: one `randomFillSync` per 256
 * tokens instead of a system call per acquisition. Every byte is used for one token only.
 */
const tokenPool = Buffer.allocUnsafeSlow(TOKEN_BYTES * 256);
let tokenPoolOffset = tokenPool.length;

/** A fresh 128-bit random token. */
export function newToken(): string {
  if (tokenPoolOffset === tokenPool.length) {
    randomFillSync(tokenPool);
    tokenPoolOffset = 0;
  }
  const token = tokenPool.toString('hex', tokenPoolOffset, tokenPoolOffset + TOKEN_BYTES);
  tokenPoolOffset += TOKEN_BYTES;
  return token;
}

function sleep(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    stop.addEventListener('abort', () => clearTimeout(timer), { once: true });
  });
}

/** Rejects with `signal.reason` when `signal` aborts; forgets the listener when `stop` aborts. */
function rejectOnAbort(signal: AbortSignal, stop: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const unsubscribe = whenAborted(signal, () => reject(signal.reason));
    stop.addEventListener('abort', unsubscribe, { once: true });
  });
}
