import { randomBytes } from 'node:crypto';
import type { AcquireGranted, LockBackend } from './backend.js';
import { InvalidArgumentError, LockTimeoutError } from './errors.js';
import { LocalQueue, type Ticket } from './local-queue.js';
import { Lock, wrapBackendError } from './lock.js';
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
} from './validation.js';

/** Options of {@link LockManager.acquire} and the other waiting calls. */
export interface AcquireOptions {
  /** Lease length in milliseconds. @default 30_000 (or `defaults.ttl`) */
  ttl?: number;
  /** How long to wait for the lock, in milliseconds, before a {@link LockTimeoutError}. @default 10_000 (or `defaults.wait`) */
  wait?: number;
  /** Cancels waiting; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Renew the lease in the background until release. @default false for `acquire`, true for `withLock` */
  autoExtend?: boolean;
}

/** Options of {@link LockManager.tryAcquire}: one attempt, so no `wait`. */
export type TryAcquireOptions = Omit<AcquireOptions, 'wait'>;

/** Options of a semaphore's calls: {@link AcquireOptions} plus how many permits to take. */
export interface PermitOptions extends AcquireOptions {
  /** Permits to take at once, from 1 to the semaphore's `limit`. @default 1 */
  weight?: number;
}

/** Options of a semaphore's `tryAcquire`. */
export type TryPermitOptions = Omit<PermitOptions, 'wait'>;

/** Defaults applied to every call of one {@link LockManager}. */
export interface LockDefaults {
  /** @default 30_000 */
  ttl?: number;
  /** @default 10_000 */
  wait?: number;
  /** Auto-extension for `acquire` and `tryAcquire` (`withLock` always extends unless told not to). @default false */
  autoExtend?: boolean;
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
const ACQUIRE_OPTIONS = ['ttl', 'wait', 'signal', 'autoExtend'] as const;
const TRY_OPTIONS = ['ttl', 'signal', 'autoExtend'] as const;

interface ResolvedCall {
  key: string;
  limit: number;
  weight: number;
  ttlMs: number;
  waitMs: number;
  signal: AbortSignal | undefined;
  autoExtend: boolean;
}

/**
 * Acquires locks on one backend: waiting with wake-ups and backoff, auto-extension, fencing.
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
    assertOptions(options.defaults, 'options.defaults', ['ttl', 'wait', 'autoExtend']);
    assertOptions(options.backoff, 'options.backoff', ['initialMs', 'maxMs']);
    const {
      ttl = DEFAULT_TTL_MS,
      wait = DEFAULT_WAIT_MS,
      autoExtend = false,
    } = options.defaults ?? {};
    assertPositiveDuration(ttl, 'options.defaults.ttl');
    assertNonNegativeDuration(wait, 'options.defaults.wait');
    assertBoolean(autoExtend, 'options.defaults.autoExtend');
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
    this.#defaults = { ttl, wait, autoExtend };
    this.#backoffInitialMs = initialMs;
    this.#backoffMaxMs = maxMs;
  }

  /**
   * Waits up to `options.wait` ms for the lock on `key`.
   *
   * @param key - the lock's name (1 to 512 UTF-8 bytes)
   * @throws {@link LockTimeoutError} when the wait runs out; the signal's reason when aborted
   */
  acquire(key: string, options?: AcquireOptions): Promise<Lock> {
    return this.#acquireWaiting(this.#resolve(key, 1, 1, options, 'options', false));
  }

  /**
   * One attempt at the lock on `key`: resolves `null` at once when it is held.
   *
   * @param key - the lock's name
   */
  tryAcquire(key: string, options?: TryAcquireOptions): Promise<Lock | null> {
    return this.#attemptOnce(this.#resolveTry(key, 1, 1, options, 'options'));
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
    assertFunction(fn, 'fn');
    const call = this.#resolve(key, 1, 1, options, 'options', true);
    return this.#runHolding(call, fn);
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
    assertOptions(options, 'options', ['limit']);
    assertPositiveInteger(options?.limit, 'options.limit');
    const { limit } = options;
    const permitCall = (permitOptions: PermitOptions | undefined, withFn: boolean) => {
      const weight = this.#weight(permitOptions, limit);
      const { weight: _weight, ...rest } = permitOptions ?? {};
      return this.#resolve(key, limit, weight, rest, 'options', withFn);
    };
    return {
      key,
      limit,
      acquire: (permitOptions) => this.#acquireWaiting(permitCall(permitOptions, false)),
      tryAcquire: (permitOptions) => {
        const weight = this.#weight(permitOptions, limit);
        const { weight: _weight, ...rest } = permitOptions ?? {};
        return this.#attemptOnce(this.#resolveTry(key, limit, weight, rest, 'options'));
      },
      withPermit: (fn, permitOptions) => {
        assertFunction(fn, 'fn');
        return this.#runHolding(permitCall(permitOptions, true), fn);
      },
    };
  }

  #weight(options: { weight?: number } | undefined, limit: number): number {
    const weight = options?.weight ?? 1;
    assertPositiveInteger(weight, 'options.weight');
    if (weight > limit) {
      throw new InvalidArgumentError('options.weight', `${weight} is more than the limit ${limit}`);
    }
    return weight;
  }

  #resolve(
    key: string,
    limit: number,
    weight: number,
    options: AcquireOptions | undefined,
    argument: string,
    autoExtendByDefault: boolean,
  ): ResolvedCall {
    assertKey(key);
    assertOptions(options, argument, ACQUIRE_OPTIONS);
    const {
      ttl = this.#defaults.ttl,
      wait = this.#defaults.wait,
      signal,
      autoExtend = autoExtendByDefault || this.#defaults.autoExtend,
    }: AcquireOptions = options ?? {};
    assertPositiveDuration(ttl, `${argument}.ttl`);
    assertNonNegativeDuration(wait, `${argument}.wait`);
    if (signal !== undefined) assertSignal(signal, `${argument}.signal`);
    assertBoolean(autoExtend, `${argument}.autoExtend`);
    return { key, limit, weight, ttlMs: ttl, waitMs: wait, signal, autoExtend };
  }

  #resolveTry(
    key: string,
    limit: number,
    weight: number,
    options: TryAcquireOptions | undefined,
    argument: string,
  ): ResolvedCall {
    assertOptions(options, argument, TRY_OPTIONS);
    return this.#resolve(key, limit, weight, options, argument, false);
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
    try {
      if (!(await this.#waitUntil(ticket.turn, deadline, signal))) {
        throw new LockTimeoutError(key, Date.now() - startedAt);
      }
      for (let attempt = 0; ; attempt++) {
        ticket.forgetWakeups();
        const requestedAt = Date.now();
        const result = await this.#tryBackend(call, token);
        if (result.ok) return this.#grant(call, token, result, requestedAt);
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new LockTimeoutError(key, Date.now() - startedAt);
        const delay = Math.min(
          this.#backoffDelay(attempt),
          result.retryInMs ?? remaining,
          remaining,
        );
        await this.#waitForWakeUp(key, ticket, Math.max(1, delay), signal);
      }
    } finally {
      ticket.leave();
    }
  }

  async #tryBackend(call: ResolvedCall, token: string) {
    const { key, limit, weight, ttlMs } = call;
    try {
      return await this.backend.acquire({ key, token, ttlMs, limit, weight });
    } catch (error) {
      // The request may have been applied before the reply was lost: give back whatever the
      // token might hold so it does not block others until its TTL runs out.
      this.backend.release({ key, token }).catch(() => undefined);
      throw wrapBackendError(error, `acquire of "${key}" failed`);
    }
  }

  #grant(call: ResolvedCall, token: string, granted: AcquireGranted, requestedAt: number): Lock {
    return new Lock({
      backend: this.backend,
      key: call.key,
      token,
      fence: granted.fence,
      ttlMs: granted.ttlMs,
      requestedAt,
      autoExtend: call.autoExtend,
      onSettled: () => this.#queue.notifyReleased(call.key),
    });
  }

  /** Full-jitter exponential backoff: spreads retries so waiters do not collide. */
  #backoffDelay(attempt: number): number {
    const ceiling = Math.min(
      this.#backoffMaxMs,
      this.#backoffInitialMs * 2 ** Math.min(attempt, 30),
    );
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
      stop.abort();
    }
  }

  /** Waits for whichever comes first: a release the backend reports, a local release, the backoff delay. */
  async #waitForWakeUp(
    key: string,
    ticket: Ticket,
    delayMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const stop = new AbortController();
    const wakeUps: Promise<unknown>[] = [sleep(delayMs, stop.signal), ticket.nextLocalRelease()];
    if (this.backend.waitForRelease) {
      wakeUps.push(
        this.backend.waitForRelease(key, stop.signal).catch((error: unknown) => {
          // Our own abort (another wake-up won) is not a failure.
          if (stop.signal.aborted) return;
          throw wrapBackendError(error, `waiting for "${key}" failed`);
        }),
      );
    }
    if (signal) wakeUps.push(rejectOnAbort(signal, stop.signal));
    try {
      await Promise.race(wakeUps);
    } finally {
      stop.abort();
    }
  }
}

/** A fresh 128-bit random token. */
export function newToken(): string {
  return randomBytes(16).toString('hex');
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
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    stop.addEventListener('abort', () => signal.removeEventListener('abort', onAbort), {
      once: true,
    });
  });
}
