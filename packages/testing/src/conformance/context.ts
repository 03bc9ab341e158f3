import { randomUUID } from 'node:crypto';
import {
  type AcquireGranted,
  type AcquireRequest,
  type AcquireResult,
  BACKEND_CAPABILITIES,
  type BackendCapability,
  type LockBackend,
  LockManager,
  type LockManagerOptions,
  type QueuedAcquireRequest,
} from '@deadbolt/core';
import { expect } from 'vitest';

/**
 * What every conformance topic, and an `extraTests` hook, gets: the backend under test (a fresh
 * one per test) and helpers that keep tests independent of each other.
 */
export interface ConformanceContext {
  /** The backend of the current test; read it inside a test or hook, never at registration. */
  readonly backend: LockBackend;
  /** What the backend under test declares, as the suite was told (`capabilities`). */
  has(feature: BackendFeature): boolean;
  /**
   * Whether the backend wakes each wait once when it begins to listen on a key, for a release it
   * may have missed meanwhile (as the suite was told, `wakesWhenListening`).
   */
  readonly wakesWhenListening: boolean;
  /**
   * Whether the backend counts the permits of a semaphore (holders taking fewer than the limit),
   * as the suite was told (`semaphores`); the tests that need it are skipped when not.
   */
  readonly countsPermits: boolean;
  /** A key no other test uses (`conformance:<uuid>`), so tests never see each other's leases. */
  key(): string;
  /**
   * `count` managers over the current backend, standing in for that many separate processes:
   * each has its own local wait queue, so contention really goes through the backend.
   */
  managers(count: number, options?: Omit<LockManagerOptions, 'backend'>): LockManager[];
  /**
   * What the backend stores now, for tests that check a refused call left nothing behind: every
   * name it stores when the suite was given `storedNames` (for Redis, a SCAN of the backend's
   * prefix), plus each of `keys` that `inspection` shows a holder for. Empty means nothing is
   * left.
   */
  leftovers(keys: readonly string[]): Promise<string[]>;
  /**
   * Whether {@link ConformanceContext.leftovers} can see anything: the suite was given
   * `storedNames`, or the backend has `inspection`. Without either, a backend of three methods
   * keeps its storage to itself, and "left nothing behind" cannot be checked.
   */
  readonly seesStorage: boolean;
  /**
   * The current backend behind a wrapper that counts the calls reaching it (and passes each on
   * unchanged), to show that a call was refused before any I/O.
   */
  counted(): CountedBackend;
}

/** A backend that passes every call on to the real one and counts them; see {@link ConformanceContext.counted}. */
export interface CountedBackend {
  readonly backend: LockBackend;
  /** The names of the methods called so far, in order. */
  readonly calls: readonly string[];
}

/**
 * What a backend may have beyond the three required methods, each with the conformance topics
 * that test it: a capability of `BACKEND_CAPABILITIES`, or `close`.
 */
export type BackendFeature = BackendCapability | 'close';

/** Every optional feature of a backend, in the order the suite runs their topics. */
export const BACKEND_FEATURES: readonly BackendFeature[] = [
  ...(Object.keys(BACKEND_CAPABILITIES) as BackendCapability[]),
  'close',
];

/** The features `backend` declares (the capabilities it has as members, and `close`). */
export function declaredFeatures(backend: LockBackend): BackendFeature[] {
  return BACKEND_FEATURES.filter((feature) => backend[feature] !== undefined);
}

/** Builds the context whose `backend` the suite swaps before each test. */
export function createContext(
  current: () => LockBackend,
  features: ReadonlySet<BackendFeature>,
  storedNames?: (backend: LockBackend) => Promise<readonly string[]>,
  wakesWhenListening = false,
  countsPermits = true,
): ConformanceContext {
  return {
    get backend() {
      return current();
    },
    has: (feature) => features.has(feature),
    wakesWhenListening,
    countsPermits,
    seesStorage: storedNames !== undefined || features.has('inspection'),
    key: () => `conformance:${randomUUID()}`,
    managers: (count, options) =>
      Array.from({ length: count }, () => new LockManager({ ...options, backend: current() })),
    leftovers: async (keys) => {
      const backend = current();
      const stored = storedNames ? [...(await storedNames(backend))] : [];
      if (backend.inspection) {
        for (const key of keys) {
          if ((await backend.inspection.inspect({ key })) !== null) stored.push(`held: ${key}`);
        }
      }
      return stored;
    },
    counted: () => countCalls(current()),
  };
}

function countCalls(inner: LockBackend): CountedBackend {
  const calls: string[] = [];
  const counting =
    <Args extends unknown[], Result>(name: string, method: (...args: Args) => Result) =>
    (...args: Args): Result => {
      calls.push(name);
      return method(...args);
    };
  const backend: LockBackend = {
    acquire: counting('acquire', (request) => inner.acquire(request)),
    extend: counting('extend', (request) => inner.extend(request)),
    release: counting('release', (request) => inner.release(request)),
  };
  const wrapped = backend as unknown as Record<string, unknown>;
  for (const [name, methods] of Object.entries(BACKEND_CAPABILITIES)) {
    const capability = (
      inner as unknown as Record<
        string,
        Record<string, (...args: unknown[]) => unknown> | undefined
      >
    )[name];
    if (capability === undefined) continue;
    wrapped[name] = Object.fromEntries(
      methods.map((method) => [
        method,
        counting(`${name}.${method}`, (...args: unknown[]) =>
          capability[method]?.apply(capability, args),
        ),
      ]),
    );
  }
  if (inner.close) backend.close = counting('close', () => inner.close?.() ?? Promise.resolve());
  return { backend, calls };
}

/**
 * Counts what is held at once, independently of the lock under test: code inside a critical
 * section reports itself here, so a backend that grants too much shows up as a peak above the
 * limit whatever the backend itself believes.
 *
 * Given the section's lock, a section counts only while that lock is `held` by its holder's own
 * clock: a holder paused past its lease (a loaded machine delays timers by seconds) may still be
 * inside when the next holder is rightly let in, and the promise is that no two holders believe
 * they hold at once, not that a paused one cannot overstay.
 *
 * @example
 * ```ts
 * const detector = new OverlapDetector();
 * await locks.withLock(key, (lock) => detector.hold(1, () => doWork(), lock));
 * expect(detector.peak).toBe(1);
 * ```
 */
export class OverlapDetector {
  readonly #open = new Set<{ weight: number; lock: { readonly held: boolean } | undefined }>();
  /** The most permits ever held at once. */
  peak = 0;
  /** Critical sections that finished. */
  completed = 0;

  /**
   * Runs `work` counted as holding `weight` permits.
   *
   * @param weight - permits the caller holds while `work` runs
   * @param work - the critical section; it should yield (await something) so overlaps can happen
   * @param lock - the section's lock: the section counts only while it is `held`
   */
  async hold(
    weight: number,
    work: () => Promise<void>,
    lock?: { readonly held: boolean },
  ): Promise<void> {
    const section = { weight, lock };
    this.#open.add(section);
    let current = 0;
    for (const open of this.#open) {
      if (open.lock === undefined || open.lock.held) current += open.weight;
    }
    this.peak = Math.max(this.peak, current);
    try {
      await work();
    } finally {
      this.#open.delete(section);
      this.completed += 1;
    }
  }
}

/** A request for `weight` of `limit` permits with a lease long enough never to run out in a test. */
export function request(
  key: string,
  token: string,
  overrides: Partial<Omit<AcquireRequest, 'key' | 'token'>> = {},
): AcquireRequest {
  return { key, token, ttlMs: 30_000, limit: 1, weight: 1, ...overrides };
}

/** A {@link request} that queues, with a place of 10 s unless `overrides` says otherwise. */
export function queued(
  key: string,
  token: string,
  overrides: Partial<Omit<QueuedAcquireRequest, 'key' | 'token'>> = {},
): QueuedAcquireRequest {
  return { ...request(key, token), placeTtlMs: 10_000, ...overrides };
}

/** Fails the test unless `result` is a grant, and narrows it to one. */
export function expectGranted(result: AcquireResult): AcquireGranted {
  expect(result).toMatchObject({ ok: true });
  if (!result.ok) throw new Error('unreachable: the assertion above failed');
  return result;
}

/** Fails the test unless each fence is a positive safe integer greater than the one before. */
export function expectIncreasing(fences: readonly number[]): void {
  for (const [index, fence] of fences.entries()) {
    expect(Number.isSafeInteger(fence) && fence > 0, `fence ${fence} is a positive integer`).toBe(
      true,
    );
    if (index > 0) expect(fence).toBeGreaterThan(fences[index - 1]!);
  }
}

/** A backend that has the `wakeUps` capability. */
export type WakingBackend = LockBackend & Required<Pick<LockBackend, 'wakeUps'>>;

/** A backend that has the `queue` capability. */
export type QueueingBackend = LockBackend & Required<Pick<LockBackend, 'queue'>>;

/** A backend that has the `queue` and `handoff` capabilities. */
export type HandingBackend = QueueingBackend & Required<Pick<LockBackend, 'handoff'>>;

/** The current backend as one that has `feature`: the suite runs a topic only when it does. */
export function withFeature<Backend extends LockBackend>(
  ctx: ConformanceContext,
  feature: BackendFeature,
): Backend {
  const backend = ctx.backend;
  if (backend[feature] === undefined) {
    throw new Error(`the backend was said to have ${feature}, but has none`);
  }
  return backend as Backend;
}

/**
 * Takes the wake-up a backend sends when it begins to listen on `key`, for a release it might have
 * missed meanwhile (a Redis backend wakes every wait when its subscription takes effect; the
 * PostgreSQL backend wakes the waits whose `since` is older than its LISTEN), so the waits after
 * it see only releases; the backend then keeps listening for them. The wait asks with the oldest
 * `since` there is, which every such backend answers once it listens. Waiting for that wake-up
 * itself, rather than for a while, keeps the tests right however slowly listening comes about.
 */
export async function absorbFirstWakeUp(ctx: ConformanceContext, key: string): Promise<void> {
  if (!ctx.wakesWhenListening) return;
  const backend = ctx.backend;
  const priming = new AbortController();
  const signal = priming.signal;
  const wait =
    backend.wakeUps?.waitForRelease({ key, signal, since: 0 }) ??
    backend.handoff?.waitForGrant({ key, signal, token: 'absorbing', attempt: 1, since: 0 });
  const timeout = setTimeout(
    () =>
      priming.abort(
        new Error(
          `the backend was said to wake waits when it begins to listen (wakesWhenListening), but sent no wake-up on ${key} within ${FIRST_WAKE_UP_TIMEOUT_MS} ms`,
        ),
      ),
    FIRST_WAKE_UP_TIMEOUT_MS,
  );
  try {
    await wait;
  } finally {
    clearTimeout(timeout);
  }
}

const FIRST_WAKE_UP_TIMEOUT_MS = 10_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every 10 ms until it is true; fails the test after `timeoutMs`. Waiting for a
 * state rather than sleeping a fixed time keeps expiry tests independent of machine speed.
 */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(10);
  }
}

/**
 * Sets up a test that needs a short lease still held a call or two after its grant: `setUp` runs
 * on a fresh key with each TTL of `ttlsMs` in turn until it says the lease was still held when it
 * needed it. On a loaded machine the calls after a grant can outlast a short lease, which says
 * nothing about the backend, and `quorum()` rightly refuses a grant (or an extension) that took
 * its members longer than the lease; a lease that runs out even at the longest TTL does say
 * something, and fails the test.
 * @returns the key and TTL of the try that held
 */
export async function withShortLease(
  ctx: Pick<ConformanceContext, 'key'>,
  ttlsMs: readonly number[],
  setUp: (key: string, ttlMs: number) => Promise<boolean>,
): Promise<{ key: string; ttlMs: number }> {
  for (const ttlMs of ttlsMs) {
    const key = ctx.key();
    if (await setUp(key, ttlMs)) return { key, ttlMs };
  }
  throw new Error(
    `a lease of ${ttlsMs.at(-1)} ms ran out before the next call: is ttlMs read as milliseconds?`,
  );
}

/**
 * Timeout of the tests that run many contenders. It only tells a livelock from slow progress, so
 * it is generous: `quorum()` over two PostgreSQL databases serves 50 contenders in 13 s on an
 * idle machine (every release wakes every waiter, and each asks both databases, one row lock at a
 * time), and took over 60 s while other suites loaded the two cores; `quorum()` over three memory
 * backends took 1 s idle and 138 s beside a second CI run (contenders that each win a different
 * member give back and retry).
 */
export const CONTENTION_TIMEOUT_MS = 300_000;

/**
 * What a call that returns a promise rejects with. Fails the test if it resolves, or if it throws
 * at once instead: a caller's `.catch()` would never see that error.
 */
export async function rejectionOf(call: () => unknown): Promise<Error> {
  let returned: unknown;
  try {
    returned = call();
  } catch (error) {
    throw new Error(`expected a rejected promise, but the call threw at once: ${error}`);
  }
  expect(returned).toBeInstanceOf(Promise);
  try {
    await returned;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** What a constructor or factory (which returns no promise) throws; fails the test if it does not. */
export function thrownBy(call: () => unknown): Error {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
  throw new Error('expected the call to throw, but it returned');
}
