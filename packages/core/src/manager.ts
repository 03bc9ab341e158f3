import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import { hostname } from 'node:os';
import {
  Acquisition,
  type AcquisitionContext,
  type AutoExtension,
  ask,
  eventBase,
  GiveBacks,
  giveBack,
  type ResolvedCall,
} from './acquisition.js';
import type { AcquireGranted, LockBackend } from './backend.js';
import { InvalidArgumentError, LockLostError, NestedLockError } from './errors.js';
import {
  type AcquireTraceContext,
  acquireTrace,
  EVENT_NAMES,
  LockEventHub,
  type LockEventListener,
  type LockEventName,
  nextAcquisitionId,
} from './events.js';
import { grantedLease, type Lease, longestRenewalIntervalMs, lossPoint } from './lease.js';
import { READ_WRITE_LIMIT } from './limits.js';
import { LocalQueue } from './local-queue.js';
import { type HeldLock, Lock, wrapBackendError } from './lock.js';
import { LockSet } from './lock-set.js';
import {
  assertBackend,
  assertBoolean,
  assertChosenToken,
  assertFunction,
  assertKey,
  assertNonNegativeDuration,
  assertOptions,
  assertOwner,
  assertPositiveDuration,
  assertPositiveInteger,
  assertSignal,
  assertTtl,
  typeName,
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
  /**
   * Renew the lease in the background until release: `true` renews a third of the way into each
   * lease, `{ everyMs }` every `everyMs` (less than 90% of the TTL, where the lease would count as
   * lost). `lock.stopExtending()` ends it without releasing.
   * @default false for `acquire`, true for `withLock`
   */
  autoExtend?: boolean | { everyMs: number };
  /**
   * Wait in arrival order across every process: a place in the backend's queue, renewed while
   * waiting, and on a backend that hands off (the Redis and memory backends), the lock handed
   * over on release with no further request. `false` races for the lock when it frees up
   * instead: no queue place, and a request after every release a waiter hears of.
   * @default true (or `defaults.fair`, or the primitive's `fair`)
   */
  fair?: boolean;
  /**
   * The acquisition's token, when it must be known before acquiring (an idempotency key, a job
   * id): whoever has it can release or extend the lease, so it must be unguessable, like the
   * random one deadbolt makes by default (128 bits): 32 to 256 printable ASCII characters, no
   * spaces, at least 12 different ones (a v4 UUID qualifies). Two acquisitions with one token
   * are one holder: the second is granted the first one's lease again, so use one token per
   * piece of work, never per process.
   * @default a fresh random token
   */
  token?: string;
}

/** Options of {@link LockManager.tryAcquire}: one attempt, so no `wait` and no queue place. */
export type TryAcquireOptions = Omit<AcquireOptions, 'wait' | 'fair'>;

/** Options of {@link LockManager.withLock} and the other calls that run a callback under a lock. */
export interface WithLockOptions extends AcquireOptions {
  /**
   * What to do when this async flow already holds the key (a `withLock` inside a `withLock` of
   * the same key, which would otherwise wait for itself): `true` runs `fn` under the hold it
   * has, which the outer call releases; by default the call rejects at once with
   * {@link NestedLockError}.
   * @default false
   */
  reentrant?: boolean;
}

/** Options of a semaphore's calls: {@link AcquireOptions} plus how many permits to take. */
export interface PermitOptions extends AcquireOptions {
  /** Permits to take at once, from 1 to the semaphore's `limit`. @default 1 */
  weight?: number;
}

/** Options of {@link LockManager.acquireAll}: those of `acquire` but `token` (each lock has its own). */
export type MultiAcquireOptions = Omit<AcquireOptions, 'token'>;

/** Options of {@link LockManager.resume}. */
export interface ResumeOptions {
  /** See {@link AcquireOptions.autoExtend}. @default false (or `defaults.autoExtend`) */
  autoExtend?: boolean | { everyMs: number };
  /** Cancels the confirmation request; the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of a semaphore's `withPermit`: {@link PermitOptions} and {@link WithLockOptions.reentrant}. */
export interface WithPermitOptions extends PermitOptions {
  /** See {@link WithLockOptions.reentrant}. @default false */
  reentrant?: boolean;
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
  /**
   * Who holds this manager's locks, as people who inspect them see it (the `deadbolt` CLI, a
   * backend's `inspection`): stored with each lease, never used to decide anything. At most 256
   * UTF-8 bytes. @default `${hostname()}:${process.pid}`
   */
  owner?: string;
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
  withLock<T>(fn: (lock: Lock) => Promise<T> | T, options?: WithLockOptions): Promise<T>;
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
  withPermit<T>(fn: (lock: Lock) => Promise<T> | T, options?: WithPermitOptions): Promise<T>;
}

const DEFAULT_TTL_MS = 30_000;
const DEFAULT_WAIT_MS = 10_000;
const ACQUIRE_OPTIONS = ['ttl', 'wait', 'signal', 'autoExtend', 'fair', 'token'] as const;

/** What kind of lock a call is on: the one primitive with other numbers. */
interface Primitive {
  key: string;
  limit: number;
  /** The primitive's own fairness; calls and defaults fill in when undefined. */
  fair: boolean | undefined;
  /** Writers always queue so that a waiting writer blocks new readers. */
  alwaysQueue: boolean;
}
const TRY_OPTIONS = ['ttl', 'signal', 'autoExtend', 'token'] as const;
/** Every lock of a set has a token of its own: none can be chosen. */
const MULTI_OPTIONS = ACQUIRE_OPTIONS.filter((name) => name !== 'token');
/** Most keys one `acquireAll` takes. */
const MAX_KEY_SET = 64;
/**
 * The locks each manager's `withLock` holds in the current async flow, by manager and key: nested
 * calls see them. One storage for every manager, not one each: before Node 24 every enabled
 * `AsyncLocalStorage` stays enabled for the life of the process and adds work to every promise the
 * process creates, so a storage per manager made every manager that ever ran `withLock` slow down
 * all of the process's later async code.
 */
const holdingInFlow = new AsyncLocalStorage<ReadonlyMap<LockManager, ReadonlyMap<string, Lock>>>();
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
  /** The label stored with this manager's leases (see {@link LockManagerOptions.owner}). */
  readonly owner: string;
  readonly #queue = new LocalQueue();
  readonly #events = new LockEventHub();
  readonly #acquisitions: AcquisitionContext;

  constructor(options: LockManagerOptions) {
    assertOptions(options, 'options', ['backend', 'defaults', 'backoff', 'owner']);
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
    const { owner = `${hostname()}:${process.pid}` } = options;
    assertOwner(owner, 'options.owner');
    this.backend = options.backend;
    this.owner = owner;
    this.#defaults = { ttl, wait, autoExtend, fair };
    this.#backoffInitialMs = initialMs;
    this.#backoffMaxMs = maxMs;
    this.#acquisitions = {
      backend: this.backend,
      events: this.#events,
      giveBacks: new GiveBacks(),
      backoffDelay: (round) => this.#backoffDelay(round),
      grant: (call, token, granted, lease, handedOff) =>
        this.#grant(call, token, granted, lease, handedOff),
    };
  }

  /**
   * Calls `listener` with every `name` event of this manager's locks, and returns the function
   * that stops it. The same events go to the `deadbolt:<name>` diagnostics channels, for every
   * manager of the process (see the README for each event's fields). Events name the key and the
   * owner, never the token.
   *
   * @example
   * ```ts
   * locks.on('lost', ({ key, reason }) => log.warn({ key }, reason.message));
   * locks.on('release-failed', ({ key, error }) => log.error({ key }, error.message));
   * ```
   */
  on<Name extends LockEventName>(name: Name, listener: LockEventListener<Name>): () => void {
    if (!EVENT_NAMES.includes(name)) {
      throw new InvalidArgumentError('name', `expected one of ${EVENT_NAMES.join(', ')}`);
    }
    assertFunction(listener, 'listener');
    return this.#events.on(name, listener);
  }

  /**
   * Waits up to `options.wait` ms for the lock on `key`.
   *
   * `wait` bounds the whole call, also a request that hangs on a dead connection: the call then
   * rejects with a {@link LockTimeoutError} whose `unanswered` is true (a request still gets at
   * least a second), and a grant the backend applies later is given back.
   *
   * @param key - the lock's name (1 to 512 UTF-8 bytes)
   * @throws {@link LockTimeoutError} when the wait runs out; the signal's reason when aborted;
   * {@link BackendError} when the backend fails a request (the client gave up on it first);
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
    options?: WithLockOptions,
  ): Promise<T> {
    return this.#mutex(key).withLock(fn, options);
  }

  /**
   * Waits for the locks on every key of `keys` and resolves them as one {@link LockSet}, or takes
   * none: on a timeout, an abort or a failure, those already taken go back. Keys are taken one at
   * a time in one order (by key) that every caller follows, so callers that ask for overlapping
   * sets in different orders never wait for each other in a cycle. `wait` bounds the whole call.
   *
   * @param keys - 1 to 64 different keys
   * @throws {@link LockTimeoutError} naming the key it was waiting for; the signal's reason when aborted
   * @example
   * ```ts
   * await using accounts = await locks.acquireAll([`account:${from}`, `account:${to}`]);
   * await transfer(from, to, amount);
   * ```
   */
  acquireAll(keys: readonly string[], options?: MultiAcquireOptions): Promise<LockSet> {
    return rejectOnThrow(() => {
      const sorted = assertKeySet(keys);
      assertOptions(options, 'options', MULTI_OPTIONS);
      // Checked once before any I/O: each lock's acquire checks them again, against its key.
      this.#resolve(this.#mutexPrimitive(sorted[0] as string), 1, options, false);
      return this.#acquireEach(sorted, options);
    });
  }

  /**
   * Runs `fn` holding the locks on every key of `keys` (see {@link LockManager.acquireAll}), with
   * auto-extension on, and always releases them; returns what `fn` returns, rethrows what it throws.
   */
  withAll<T>(
    keys: readonly string[],
    fn: (locks: LockSet) => Promise<T> | T,
    options?: MultiAcquireOptions,
  ): Promise<T> {
    return rejectOnThrow(async () => {
      assertFunction(fn, 'fn');
      const set = await this.acquireAll(keys, { autoExtend: true, ...options });
      try {
        return await this.#runHolding(set.locks, () => fn(set));
      } finally {
        // A failed release never hides fn's outcome; each lock published `release-failed`.
        await set.release().catch(() => undefined);
      }
    });
  }

  async #acquireEach(
    keys: readonly string[],
    options: MultiAcquireOptions | undefined,
  ): Promise<LockSet> {
    const deadline = Date.now() + (options?.wait ?? this.#defaults.wait);
    const taken: Lock[] = [];
    try {
      for (const key of keys) {
        const wait = Math.max(0, deadline - Date.now());
        taken.push(await this.acquire(key, { ...options, wait }));
      }
      return new LockSet(taken);
    } catch (error) {
      await Promise.allSettled(taken.map((lock) => lock.release()));
      throw error;
    }
  }

  /**
   * Goes on holding a lock acquired elsewhere, from its `lock.toHandle()` (a scheduler acquires, a
   * worker finishes): the lock returned extends, auto-extends, signals and releases like any. It
   * first renews the lease for the handle's TTL, which confirms that the lease is still there.
   *
   * @param handle - what `lock.toHandle()` gave; a secret (it holds the token)
   * @throws {@link LockLostError} when the lease is gone (expired, released or taken over);
   *   {@link InvalidArgumentError} for a malformed handle; {@link BackendError} (all as rejections)
   * @example
   * ```ts
   * // scheduler
   * const lock = await locks.acquire(`job:${id}`, { ttl: 60_000 });
   * await queue.send({ id, lock: lock.toHandle() });
   * // worker
   * const lock = await locks.resume(message.lock, { autoExtend: true });
   * try { await run(message.id, { fence: lock.fence }); } finally { await lock.release(); }
   * ```
   */
  resume(handle: HeldLock, options?: ResumeOptions): Promise<Lock> {
    return rejectOnThrow(() => {
      assertHeldLock(handle);
      assertOptions(options, 'options', ['autoExtend', 'signal']);
      const { autoExtend = this.#defaults.autoExtend, signal } = options ?? {};
      if (signal !== undefined) assertSignal(signal, 'options.signal');
      const { key, token, fence, ttlMs, weight, limit } = handle;
      const call: ResolvedCall = {
        id: nextAcquisitionId(),
        calledAt: Date.now(),
        key,
        limit,
        weight,
        ttlMs,
        waitMs: 0,
        signal,
        owner: this.owner,
        queued: false,
        handoff: false,
        token,
        autoExtend: resolveAutoExtension(autoExtend, ttlMs),
      };
      return this.#confirm(call, token, fence);
    });
  }

  async #confirm(call: ResolvedCall, token: string, fence: number): Promise<Lock> {
    call.signal?.throwIfAborted();
    const { key, ttlMs } = call;
    const sentAt = Date.now();
    let extended: boolean;
    try {
      extended = await this.backend.extend({ key, token, ttlMs });
    } catch (error) {
      throw wrapBackendError(error, `resuming "${key}" failed`);
    }
    if (!extended) {
      throw new LockLostError(
        key,
        'the lease the handle names is gone: it expired, was released or was taken over',
      );
    }
    const lock = this.#grant(
      call,
      token,
      { ok: true, fence, ttlMs },
      { startedAt: sentAt, ttlMs },
      false,
    );
    if (lock === null)
      throw new LockLostError(key, 'the lease could not be confirmed before it expires');
    return lock;
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
          const { reentrant, ...others } = permitOptions ?? {};
          const [weight, rest] = this.#splitWeight(others, limit);
          return handleOf(weight).withLock(fn, {
            ...rest,
            ...(reentrant === undefined ? {} : { reentrant }),
          });
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
    return this.#handle(this.#mutexPrimitive(key), 1);
  }

  #mutexPrimitive(key: string): Primitive {
    return { key, limit: 1, fair: undefined, alwaysQueue: false };
  }

  /** The three calls on one primitive, validating their options before any I/O. */
  #handle(primitive: Primitive, weight: number): LockHandle {
    return {
      acquire: (options) =>
        rejectOnThrow(() => {
          const call = this.#resolve(primitive, weight, options, false);
          this.#refuseNested(call.key, 'acquire');
          return this.#acquireWaiting(call);
        }),
      tryAcquire: (options) =>
        rejectOnThrow(() => {
          assertOptions(options, 'options', TRY_OPTIONS);
          return this.#attemptOnce(this.#resolve(primitive, weight, options, false, true));
        }),
      withLock: (fn, options) =>
        rejectOnThrow(() => {
          assertFunction(fn, 'fn');
          const { reentrant = false, ...rest } = options ?? {};
          assertBoolean(reentrant, 'options.reentrant');
          const call = this.#resolve(primitive, weight, rest, true);
          const outer = this.#heldInFlow(call.key);
          if (outer?.held && reentrant) return Promise.resolve().then(() => fn(outer));
          this.#refuseNested(call.key, 'withLock');
          return this.#runWithLock(call, fn);
        }),
    };
  }

  /**
   * Refuses to wait for a key this async flow already holds through `withLock`: the wait could
   * only end when the outer call releases it, which it does only once the wait is over.
   */
  #refuseNested(key: string, call: 'acquire' | 'withLock'): void {
    if (this.#heldInFlow(key)?.held) throw new NestedLockError(key, call);
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
    once = false,
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
      token,
    }: AcquireOptions = options ?? {};
    if (token !== undefined) assertChosenToken(token, 'options.token');
    assertTtl(ttl, 'options.ttl');
    assertNonNegativeDuration(wait, 'options.wait');
    if (signal !== undefined) assertSignal(signal, 'options.signal');
    assertBoolean(fair, 'options.fair');
    const extension = resolveAutoExtension(autoExtend, ttl);
    // Without a queue, waiters race whatever `fair` says; one attempt (`once`) takes no place.
    const queued = !once && (primitive.alwaysQueue || fair) && this.backend.queue !== undefined;
    const handoff = queued && this.backend.handoff !== undefined;
    // One object literal, always of one shape: spreading object literals into it cost V8 (Node
    // 20) microseconds per call, more than the rest of the call's JavaScript put together.
    const call: ResolvedCall = {
      id: nextAcquisitionId(),
      calledAt: Date.now(),
      key,
      limit,
      weight,
      ttlMs: ttl,
      waitMs: wait,
      signal,
      autoExtend: extension,
      owner: this.owner,
      queued,
      handoff,
    };
    if (token !== undefined) call.token = token;
    return call;
  }

  /** The lock on `key` that this manager's `withLock` holds in the current async flow. */
  #heldInFlow(key: string): Lock | undefined {
    return holdingInFlow.getStore()?.get(this)?.get(key);
  }

  /** Runs `fn` in an async flow that also holds `locks`, as nested calls of this manager see it. */
  #runHolding<T>(locks: readonly Lock[], fn: () => Promise<T> | T): Promise<T> | T {
    const flow = new Map(holdingInFlow.getStore());
    const held = new Map(flow.get(this));
    for (const lock of locks) held.set(lock.key, lock);
    flow.set(this, held);
    return holdingInFlow.run(flow, fn);
  }

  async #runWithLock<T>(call: ResolvedCall, fn: (lock: Lock) => Promise<T> | T): Promise<T> {
    const lock = await this.#acquireWaiting(call);
    // A failed release never hides fn's outcome: the lease then ends by its TTL, and the lock
    // published `release-failed`.
    let result: T;
    try {
      result = await this.#runHolding([lock], () => fn(lock));
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
    await lock.release().catch(() => undefined);
    return result;
  }

  #attemptOnce(call: ResolvedCall): Promise<Lock | null> {
    const attempt = async () => {
      call.signal?.throwIfAborted();
      const token = call.token ?? newToken();
      const sentAt = Date.now();
      const result = await ask(this.#acquisitions, call, token);
      return result.ok
        ? this.#grant(call, token, result, grantedLease(result, sentAt), false)
        : null;
    };
    return traced(call, false, attempt);
  }

  #acquireWaiting(call: ResolvedCall): Promise<Lock> {
    return traced(call, true, () =>
      new Acquisition(
        this.#acquisitions,
        call,
        call.token ?? newToken(),
        this.#queue.enter(call.key),
      ).run(),
    );
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
    lease: Lease,
    handedOff: boolean,
  ): Lock | null {
    if (Date.now() >= lossPoint(lease)) {
      // Only the attempt being answered can hold this token's lease or place now: giving it back
      // cannot take a place that a later attempt made.
      giveBack(this.#acquisitions, call, token);
      return null;
    }
    const { ttlMs } = call;
    this.#events.emit('acquired', () => ({
      ...eventBase(call),
      fence: granted.fence,
      waitedMs: Date.now() - call.calledAt,
      handedOff,
      ttlMs,
    }));
    return new Lock({
      backend: this.backend,
      key: call.key,
      token,
      fence: granted.fence,
      ttlMs: call.ttlMs,
      lease,
      autoExtend: call.autoExtend,
      onSettled: () => this.#queue.notifyReleased(call.key),
      giveBack: () => giveBack(this.#acquisitions, call, token),
      events: this.#events,
      about: eventBase(call),
    });
  }

  /** Full-jitter exponential backoff: spreads retries so waiters do not collide. */
  #backoffDelay(round: number): number {
    const ceiling = Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** Math.min(round, 30));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }
}

/** Checks the keys of `acquireAll` and returns them in the order every caller takes them. */
function assertKeySet(keys: unknown): string[] {
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEY_SET) {
    throw new InvalidArgumentError('keys', `expected an array of 1 to ${MAX_KEY_SET} keys`);
  }
  for (let index = 0; index < keys.length; index++) assertKey(keys[index], `keys[${index}]`);
  const sorted = [...(keys as string[])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const repeated = sorted.find((key, index) => key === sorted[index - 1]);
  if (repeated !== undefined) {
    throw new InvalidArgumentError('keys', `names "${repeated}" twice; a set holds each key once`);
  }
  return sorted;
}

/** Checks what `lock.toHandle()` gave, as received from elsewhere. */
function assertHeldLock(handle: unknown): asserts handle is HeldLock {
  assertOptions(handle, 'handle', [
    'key',
    'token',
    'fence',
    'expiresAt',
    'ttlMs',
    'weight',
    'limit',
  ]);
  if (handle === undefined)
    throw new InvalidArgumentError('handle', 'expected what lock.toHandle() gave');
  const { key, token, fence, expiresAt, ttlMs, weight, limit } = handle as Partial<HeldLock>;
  assertKey(key, 'handle.key');
  if (typeof token !== 'string' || !/^[!-~]{1,256}$/.test(token)) {
    throw new InvalidArgumentError('handle.token', 'expected the token of lock.toHandle()');
  }
  if (typeof fence !== 'number' || !Number.isSafeInteger(fence) || fence < 1) {
    throw new InvalidArgumentError(
      'handle.fence',
      `expected a positive safe integer, got ${typeName(fence)}`,
    );
  }
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new InvalidArgumentError('handle.expiresAt', 'expected epoch milliseconds');
  }
  assertTtl(ttlMs, 'handle.ttlMs');
  assertPositiveInteger(weight, 'handle.weight');
  assertPositiveInteger(limit, 'handle.limit');
  if (weight > limit)
    throw new InvalidArgumentError('handle.weight', `${weight} is more than handle.limit ${limit}`);
}

/** Checks `autoExtend` against the lease it renews. */
function resolveAutoExtension(autoExtend: unknown, ttlMs: number): AutoExtension | undefined {
  if (typeof autoExtend === 'boolean') return autoExtend ? {} : undefined;
  if (typeof autoExtend !== 'object' || autoExtend === null || Array.isArray(autoExtend)) {
    throw new InvalidArgumentError(
      'options.autoExtend',
      `expected true, false or { everyMs }, got ${typeName(autoExtend)}`,
    );
  }
  assertOptions(autoExtend, 'options.autoExtend', ['everyMs']);
  const everyMs = (autoExtend as { everyMs?: unknown } | undefined)?.everyMs;
  assertPositiveDuration(everyMs, 'options.autoExtend.everyMs');
  if (everyMs >= longestRenewalIntervalMs(ttlMs)) {
    throw new InvalidArgumentError(
      'options.autoExtend.everyMs',
      `${everyMs} ms is not less than 90% of the ttl (${ttlMs} ms): the lease would count as lost before each renewal`,
    );
  }
  return { everyMs };
}

/**
 * Runs one acquisition call under the `tracing:deadbolt:acquire` channels when anyone listens (a
 * span for the wait, say), with its outcome in the context.
 */
function traced<Result extends Lock | null>(
  call: ResolvedCall,
  waits: boolean,
  run: () => Promise<Result>,
): Promise<Result> {
  if (!acquireTrace.hasSubscribers) return run();
  const { key, owner, weight, limit } = call;
  const context: AcquireTraceContext = { key, owner, weight, limit, waits };
  let lock: Result;
  // The channel's `result` is what the traced function returns: the lock's id and fence, not the
  // Lock, whose token no subscriber should be able to read.
  const traced = acquireTrace.tracePromise(async () => {
    lock = await run();
    return lock && { id: call.id, fence: lock.fence };
  }, context);
  return traced.then(() => lock);
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
