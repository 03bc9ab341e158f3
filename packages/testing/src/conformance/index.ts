import type { LockBackend } from '@deadbolt/core';
import { afterEach, beforeEach, describe } from 'vitest';
import { acquireTests } from './acquire.js';
import { badInputTests } from './bad-input.js';
import { type ConformanceContext, createContext } from './context.js';
import { expiryTests } from './expiry.js';
import { fairTests } from './fair.js';
import { fencingTests } from './fencing.js';
import { ownershipTests } from './ownership.js';
import { readWriteTests } from './read-write.js';
import { semaphoreTests } from './semaphore.js';
import { wakeTests } from './wake.js';

/** Options of {@link runBackendConformance}. */
export interface BackendConformanceOptions<Backend extends LockBackend = LockBackend> {
  /** Names the suite in the test report, for example `'ioredis'`. */
  name: string;
  /** Makes a fresh backend for each test. */
  create: () => Backend | Promise<Backend>;
  /** Runs after each test, after the backend's own `close()`: close clients you opened. */
  cleanup?: (backend: Backend) => void | Promise<void>;
  /** Registers tests for this backend only; they get the same fresh backend per test. */
  extraTests?: (context: ConformanceContext) => void;
}

/**
 * The vitest suite every deadbolt backend passes: mutual exclusion, fences, expiry, ownership,
 * weighted permits, read-write locks, fair queues, wake-ups and the answers to bad requests.
 * Call it at the top level of a test file.
 *
 * @example
 * ```ts
 * import { runBackendConformance } from '@deadbolt/testing';
 * runBackendConformance({ name: 'memory', create: () => new MemoryBackend() });
 * ```
 */
export function runBackendConformance<Backend extends LockBackend>(
  options: BackendConformanceOptions<Backend>,
): void {
  let backend: Backend | undefined;
  const context = createContext(() => {
    if (backend === undefined) throw new Error('the backend is only available inside a test');
    return backend;
  });
  describe(`${options.name}: backend conformance`, () => {
    beforeEach(async () => {
      backend = await options.create();
    });
    afterEach(async () => {
      const finished = backend;
      backend = undefined;
      if (finished === undefined) return;
      await finished.close?.();
      await options.cleanup?.(finished);
    });
    describe('acquire', () => acquireTests(context));
    describe('fencing', () => fencingTests(context));
    describe('expiry', () => expiryTests(context));
    describe('ownership', () => ownershipTests(context));
    describe('semaphore', () => semaphoreTests(context));
    describe('read-write', () => readWriteTests(context));
    describe('fair', () => fairTests(context));
    describe('wake-up', () => wakeTests(context));
    describe('bad input', () => badInputTests(context));
    if (options.extraTests) describe('backend-specific', () => options.extraTests?.(context));
  });
}
