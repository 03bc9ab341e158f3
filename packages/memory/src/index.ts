/** @module @deadbolt/memory: an in-process backend with the semantics of the Redis backends. */
import {
  type AcquireRequest,
  type AcquireResult,
  type AdvanceFenceRequest,
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertExtendRequest,
  assertKey,
  assertReleaseRequest,
  assertWaitForRelease,
  BackendError,
  type ExtendRequest,
  hideTokens,
  InvalidArgumentError,
  type LockBackend,
  type LockInfo,
  type ReleaseRequest,
} from '@deadbolt/core';

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * Milliseconds since the epoch, read on every operation. Inject one to drive expiry by hand.
   * @default () => Date.now() (so vitest's and sinon's fake timers drive it)
   */
  clock?: () => number;
}

interface Holder {
  weight: number;
  expiresAt: number;
}

interface KeyState {
  holders: Map<string, Holder>;
  /** Queued tokens in arrival order (a Map keeps insertion order), each with its place's deadline. */
  queue: Map<string, number>;
  /** Last fence granted; kept after the holders leave so fences never repeat. */
  fence: number;
}

/**
 * Leases kept in this process's memory: the backend to swap in for unit tests, with the same
 * permits, fences, expiry and wake-ups as the Redis backends (not a mock).
 *
 * @example
 * ```ts
 * const locks = new LockManager({ backend: new MemoryBackend() });
 * await using lock = await locks.acquire('job:1');
 * ```
 */
export class MemoryBackend implements LockBackend {
  readonly #clock: () => number;
  readonly #keys = new Map<string, KeyState>();
  readonly #waiters = new Map<string, Set<(error?: unknown) => void>>();
  #closed = false;

  constructor(options: MemoryBackendOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'expected an object');
    }
    for (const name of Object.keys(options)) {
      if (name !== 'clock') throw new InvalidArgumentError(`options.${name}`, 'unknown option');
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new InvalidArgumentError('options.clock', 'expected a function returning epoch ms');
    }
    this.#clock = options.clock ?? (() => Date.now());
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    this.#assertOpen();
    const { key, token, limit, weight } = request;
    // Whole milliseconds, rounded up, as the Redis backends store them.
    const ttlMs = Math.ceil(request.ttlMs);
    const queueTtlMs = request.queueTtlMs === undefined ? undefined : Math.ceil(request.queueTtlMs);
    const now = this.#clock();
    const state = this.#live(key, now);
    // Setting an existing place renews it without moving it.
    if (queueTtlMs !== undefined) state.queue.set(token, now + queueTtlMs);
    let used = 0;
    let earliestExpiry = Number.POSITIVE_INFINITY;
    for (const [holderToken, holder] of state.holders) {
      // A token that already holds (its earlier reply was lost) replaces its own grant.
      if (holderToken === token) continue;
      used += holder.weight;
      earliestExpiry = Math.min(earliestExpiry, holder.expiresAt);
    }
    const retryInMs = Math.max(1, earliestExpiry - now);
    const head = state.queue.keys().next().value;
    // Queued requests go in arrival order; unqueued ones yield to anyone queued.
    if (used + weight > limit || (head !== undefined && head !== token)) {
      return { ok: false, ...(Number.isFinite(retryInMs) ? { retryInMs } : {}) };
    }
    state.queue.delete(token);
    state.holders.set(token, { weight, expiresAt: now + ttlMs });
    // The next in line may fit in what is left: let it try now rather than at its next retry.
    if (state.queue.size > 0 && used + weight < limit) this.#wake(key);
    // Same rule as the Redis scripts: never below the clock in microseconds, always above the last.
    state.fence = Math.max(state.fence + 1, Math.floor(now * 1000));
    return { ok: true, fence: state.fence, ttlMs };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    this.#assertOpen();
    const now = this.#clock();
    const holder = this.#live(request.key, now).holders.get(request.token);
    if (holder === undefined) return false;
    holder.expiresAt = now + Math.ceil(request.ttlMs);
    return true;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    this.#assertOpen();
    const state = this.#live(request.key, this.#clock());
    const released = state.holders.delete(request.token);
    // Giving up a queue place also lets the ones behind move up.
    const leftQueue = state.queue.delete(request.token);
    if (released || leftQueue) this.#wake(request.key);
    return released;
  }

  async advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    this.#assertOpen();
    const state = this.#live(request.key, this.#clock());
    state.fence = Math.max(state.fence, request.fence);
  }

  waitForRelease(key: string, signal: AbortSignal, since?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      assertWaitForRelease(key, signal, since);
      if (signal.aborted) return reject(signal.reason);
      if (this.#closed) return reject(closedError());
      let waiters = this.#waiters.get(key);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(key, waiters);
      }
      const waitersOfKey = waiters;
      const settle = (error?: unknown) => {
        waitersOfKey.delete(wake);
        if (waitersOfKey.size === 0 && this.#waiters.get(key) === waitersOfKey) {
          this.#waiters.delete(key);
        }
        signal.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const wake = (error?: unknown) => settle(error);
      const onAbort = () => settle(signal.reason);
      waitersOfKey.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async inspect(key: string): Promise<LockInfo | null> {
    assertKey(key);
    this.#assertOpen();
    const now = this.#clock();
    const state = this.#live(key, now);
    if (state.holders.size === 0) return null;
    const holders = [...state.holders].map(([token, holder]) => ({
      token,
      weight: holder.weight,
      ttlMs: holder.expiresAt - now,
    }));
    return hideTokens({ key, holders, fence: state.fence, queued: state.queue.size });
  }

  /** Rejects every waiter and refuses further calls; leases are dropped with the process. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiters of this.#waiters.values()) {
      for (const wake of waiters) wake(closedError());
    }
    this.#waiters.clear();
  }

  /** The key's state with expired holders pruned, as the Redis scripts prune them. */
  #live(key: string, now: number): KeyState {
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = { holders: new Map(), queue: new Map(), fence: 0 };
      this.#keys.set(key, state);
    }
    for (const [token, holder] of state.holders) {
      if (holder.expiresAt <= now) state.holders.delete(token);
    }
    for (const [token, deadline] of state.queue) {
      if (deadline <= now) state.queue.delete(token);
    }
    return state;
  }

  #wake(key: string): void {
    const waiters = this.#waiters.get(key);
    if (waiters === undefined) return;
    for (const wake of [...waiters]) wake();
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }
}

function closedError(): BackendError {
  return new BackendError('[memory] the backend is closed', new Error('closed'));
}
