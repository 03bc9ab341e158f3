import { randomUUID } from 'node:crypto';
import { type LockBackend, LockManager, type LockManagerOptions } from '@deadbolt/core';

/** What every conformance topic gets: the backend under test (fresh per test) and helpers. */
export interface ConformanceContext {
  /** The backend of the current test. */
  readonly backend: LockBackend;
  /** A key no other test uses. */
  key(): string;
  /** `count` managers over the backend: like that many separate processes. */
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

/** Counts concurrent holders independently of the lock: the detector every exclusion test uses. */
export class OverlapDetector {
  #current = 0;
  /** The most permits ever out at once. */
  peak = 0;
  /** Completed critical sections. */
  completed = 0;

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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 10 ms until it is true; fails the test after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}
