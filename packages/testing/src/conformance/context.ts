import { randomUUID } from 'node:crypto';
import {
  type AcquireGranted,
  type AcquireRequest,
  type AcquireResult,
  type LockBackend,
  LockManager,
  type LockManagerOptions,
} from '@deadbolt/core';
import { expect } from 'vitest';

/**
 * What every conformance topic, and an `extraTests` hook, gets: the backend under test (a fresh
 * one per test) and helpers that keep tests independent of each other.
 */
export interface ConformanceContext {
  /** The backend of the current test; read it inside a test or hook, never at registration. */
  readonly backend: LockBackend;
  /** A key no other test uses (`conformance:<uuid>`), so tests never see each other's leases. */
  key(): string;
  /**
   * `count` managers over the current backend, standing in for that many separate processes:
   * each has its own local wait queue, so contention really goes through the backend.
   */
  managers(count: number, options?: Omit<LockManagerOptions, 'backend'>): LockManager[];
}

/** Builds the context whose `backend` the suite swaps before each test. */
export function createContext(current: () => LockBackend): ConformanceContext {
  return {
    get backend() {
      return current();
    },
    key: () => `conformance:${randomUUID()}`,
    managers: (count, options) =>
      Array.from({ length: count }, () => new LockManager({ ...options, backend: current() })),
  };
}

/**
 * Counts what is held at once, independently of the lock under test: code inside a critical
 * section reports itself here, so a backend that grants too much shows up as a peak above the
 * limit whatever the backend itself believes.
 *
 * @example
 * ```ts
 * const detector = new OverlapDetector();
 * await locks.withLock(key, () => detector.hold(1, () => doWork()));
 * expect(detector.peak).toBe(1);
 * ```
 */
export class OverlapDetector {
  #current = 0;
  /** The most permits ever held at once. */
  peak = 0;
  /** Critical sections that finished. */
  completed = 0;

  /**
   * Runs `work` counted as holding `weight` permits.
   *
   * @param weight - permits the caller holds while `work` runs
   * @param work - the critical section; it should yield (await something) so overlaps can happen
   */
  async hold(weight: number, work: () => Promise<void>): Promise<void> {
    this.#current += weight;
    this.peak = Math.max(this.peak, this.#current);
    try {
      await work();
    } finally {
      this.#current -= weight;
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

/** Timeout of the tests that run many contenders: generous, since a remote backend is slower. */
export const CONTENTION_TIMEOUT_MS = 60_000;
