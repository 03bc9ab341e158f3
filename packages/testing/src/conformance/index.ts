import type { LockBackend } from '@deadbolt/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireTests } from './acquire.js';
import { badInputTests } from './bad-input.js';
import { closeTests } from './close.js';
import {
  BACKEND_FEATURES,
  type BackendFeature,
  type ConformanceContext,
  createContext,
  declaredFeatures,
} from './context.js';
import { expiryTests } from './expiry.js';
import { fairTests } from './fair.js';
import { fenceAdvanceTests, fencingTests } from './fencing.js';
import { handoffTests } from './handoff.js';
import { inspectionTests } from './inspection.js';
import { listingTests } from './listing.js';
import { misuseTests } from './misuse.js';
import { multiKeyTests } from './multi-key.js';
import { ownershipTests } from './ownership.js';
import { readWriteTests } from './read-write.js';
import { securityTests } from './security.js';
import { semaphoreTests } from './semaphore.js';
import { wakeTests } from './wake.js';

/**
 * Options of {@link runBackendConformance}: how to make (and tidy up after) the backend under
 * test, and what it has beyond the three required methods. Every test gets a backend of its own
 * and keys no other test uses.
 *
 * @example
 * ```ts
 * // packages/ioredis/test/conformance.test.ts
 * import { runBackendConformance } from '@deadbolt/testing/conformance';
 * import { Redis } from 'ioredis';
 * import { it } from 'vitest';
 * import { IoredisBackend } from '../src/index.js';
 *
 * const clients = new Map<IoredisBackend, Redis>();
 * runBackendConformance({
 *   name: 'ioredis',
 *   capabilities: ['queue', 'wakeUps', 'handoff', 'fences', 'inspection', 'close'],
 *   create: () => {
 *     const client = new Redis(process.env.REDIS_URL!);
 *     const backend = new IoredisBackend(client);
 *     clients.set(backend, client);
 *     return backend;
 *   },
 *   cleanup: (backend) => clients.get(backend)?.disconnect(),
 *   extraTests: (ctx) => {
 *     it('survives SCRIPT FLUSH', async () => {
 *       // ctx.backend is this test's fresh backend, ctx.key() a key of its own
 *     });
 *   },
 * });
 * ```
 */
export interface BackendConformanceOptions<Backend extends LockBackend = LockBackend> {
  /** Names the suite in the test report, for example `'ioredis'` or `'postgres (pool of 4)'`. */
  name: string;
  /**
   * Makes a fresh backend; called before each test (in `beforeEach`), so no lease, waiter or
   * connection carries over from one test to the next.
   */
  create: () => Backend | Promise<Backend>;
  /**
   * What the backend has beyond `acquire`, `extend` and `release`: the capabilities it declares
   * (`queue`, `wakeUps`, `handoff`, `fences`, `inspection`, `listing`) and `close`. The suite runs
   * the topics of these and checks that the backend declares exactly these, so that none is
   * claimed untested or left out unnoticed.
   * @default [] (the core topics only)
   */
  capabilities?: readonly BackendFeature[];
  /**
   * Runs after each test, after the suite called the backend's own `close()`: close what
   * `create` opened besides the backend (the client the backend was given, a pool, a server).
   * @default nothing
   */
  cleanup?: (backend: Backend) => void | Promise<void>;
  /**
   * Registers tests that apply to this backend only, with `it`/`describe` from vitest. They run
   * inside the suite, so they too get a fresh backend per test through `context.backend`.
   * @default none
   */
  extraTests?: (context: ConformanceContext) => void;
  /**
   * Lists every name the backend stores (for a Redis backend: the keys a SCAN of its prefix
   * finds), so the misuse tests can show that a refused call left nothing behind. Give each
   * backend `create` makes a namespace of its own (a fresh prefix), so the list holds only what
   * the current test stored. Without it those tests check what `inspection` shows for their keys.
   * @default none
   */
  storedNames?: (backend: Backend) => Promise<readonly string[]>;
  /**
   * Whether the backend wakes a wait when it begins to listen on a key, because a release may have
   * come while it was not yet listening: the Redis backends wake every wait when their subscription
   * to the key's channel takes effect, the PostgreSQL backend the waits whose `since` is older than
   * its LISTEN. The tests that check a wait stays pending while the key is held then first take
   * that wake-up (with a wait whose `since` is 0). A backend that wakes only on releases leaves it
   * unset.
   * @default false
   */
  wakesWhenListening?: boolean;
  /**
   * Whether the backend counts the permits of semaphores, whose holders take fewer permits than
   * the limit. `quorum()` cannot (majorities that grant permits need not share a member) and
   * refuses them with `InvalidArgumentError`; for such a backend, set it to false: the tests of
   * semaphores are skipped (reported as skipped), and a test checks that refusal instead.
   * @default true
   */
  semaphores?: boolean;
}

/**
 * Registers the vitest suite every deadbolt backend passes. The core topics run for every
 * backend: mutual exclusion among 50 contenders, strictly increasing fences, TTL expiry, ownership
 * checks on extend and release, weighted permits, read-write locks, the answers to bad requests
 * and misuse (typed errors, nothing left behind), and security (keys full of Lua and braces are
 * only data, tokens never printed). Each declared capability adds its topic: `queue` (fair
 * queues, writer preference), `wakeUps` (release wake-ups), `handoff` (grants handed to queued
 * waiters), `fences` (fence advance), `inspection`, `listing`, and `close` (every call after it
 * fails). Call it at the top level of a test file; vitest must be installed (it is a peer
 * dependency).
 *
 * @param options - how to make the backend under test; see {@link BackendConformanceOptions}
 *
 * @example
 * ```ts
 * import { MemoryBackend } from '@deadbolt/memory';
 * import { runBackendConformance } from '@deadbolt/testing/conformance';
 *
 * runBackendConformance({
 *   name: 'memory',
 *   create: () => new MemoryBackend(),
 *   capabilities: ['queue', 'wakeUps', 'handoff', 'fences', 'inspection', 'listing', 'close'],
 * });
 * ```
 */
export function runBackendConformance<Backend extends LockBackend>(
  options: BackendConformanceOptions<Backend>,
): void {
  let backend: Backend | undefined;
  const { storedNames } = options;
  const features = new Set(options.capabilities ?? []);
  const context = createContext(
    () => {
      if (backend === undefined) throw new Error('the backend is only available inside a test');
      return backend;
    },
    features,
    storedNames && ((current) => storedNames(current as Backend)),
    options.wakesWhenListening,
    options.semaphores,
  );
  // A remote backend is slower than vitest's 5 s default allows for the longer tests.
  describe(`${options.name}: backend conformance`, { timeout: 30_000 }, () => {
    beforeEach(async () => {
      backend = await options.create();
    });
    afterEach(async () => {
      const finished = backend;
      backend = undefined;
      if (finished === undefined) return;
      try {
        await finished.close?.();
      } finally {
        await options.cleanup?.(finished);
      }
    });
    it('declares exactly the capabilities the suite was told to test', () => {
      expect(declaredFeatures(context.backend)).toEqual(
        BACKEND_FEATURES.filter((feature) => features.has(feature)),
      );
    });
    describe('acquire', () => acquireTests(context));
    describe('fencing', () => fencingTests(context));
    describe('expiry', () => expiryTests(context));
    describe('ownership', () => ownershipTests(context));
    describe('semaphore', () => semaphoreTests(context));
    describe('read-write', () => readWriteTests(context));
    describe('multi-key and handles', () => multiKeyTests(context));
    describe('bad input', () => badInputTests(context));
    describe('misuse', () => misuseTests(context));
    describe('security', () => securityTests(context));
    for (const [feature, topic] of topics) {
      if (features.has(feature)) describe(feature, () => topic(context));
    }
    if (options.extraTests) {
      const extraTests = options.extraTests;
      describe('backend-specific', () => extraTests(context));
    }
  });
}

/** The topic of each optional feature. */
const topics: [BackendFeature, (context: ConformanceContext) => void][] = [
  ['queue', fairTests],
  ['wakeUps', wakeTests],
  ['handoff', handoffTests],
  ['fences', fenceAdvanceTests],
  ['inspection', inspectionTests],
  ['listing', listingTests],
  ['close', closeTests],
];
