import { randomInt } from 'node:crypto';
import { InvalidArgumentError, LockManager } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  CONTENTION_TIMEOUT_MS,
  type ConformanceContext,
  expectGranted,
  expectIncreasing,
  OverlapDetector,
  rejectionOf,
  request,
  sleep,
} from './context.js';

export function semaphoreTests(ctx: ConformanceContext): void {
  it.skipIf(!ctx.countsPermits)(
    'counts weighted permits exactly: grants up to the limit, never one more',
    async () => {
      const key = ctx.key();
      const permits = { limit: 5 };
      expectGranted(await ctx.backend.acquire(request(key, 'a', { ...permits, weight: 2 })));
      expectGranted(await ctx.backend.acquire(request(key, 'b', { ...permits, weight: 3 })));
      expect((await ctx.backend.acquire(request(key, 'c', { ...permits, weight: 1 }))).ok).toBe(
        false,
      );
      expect(await ctx.backend.release({ key, token: 'a' })).toBe(true);
      // 2 free now: a weight of 3 does not fit, 2 does, and then nothing more.
      expect((await ctx.backend.acquire(request(key, 'c', { ...permits, weight: 3 }))).ok).toBe(
        false,
      );
      expectGranted(await ctx.backend.acquire(request(key, 'c', { ...permits, weight: 2 })));
      expect((await ctx.backend.acquire(request(key, 'd', { ...permits, weight: 1 }))).ok).toBe(
        false,
      );
      expect(await ctx.backend.release({ key, token: 'b' })).toBe(true);
      // A request for the whole limit fits only when nobody holds anything.
      expect((await ctx.backend.acquire(request(key, 'e', { ...permits, weight: 5 }))).ok).toBe(
        false,
      );
      expect(await ctx.backend.release({ key, token: 'c' })).toBe(true);
      expectGranted(await ctx.backend.acquire(request(key, 'e', { ...permits, weight: 5 })));
    },
  );

  it.skipIf(!ctx.countsPermits)(
    'never lets 30 contenders of random weight exceed a limit of 5',
    async () => {
      const key = ctx.key();
      const detector = new OverlapDetector();
      const rounds = 2;
      // Every weight from 1 to the limit at least once, the rest random.
      const weights = Array.from({ length: 30 }, (_, index) =>
        index < 5 ? index + 1 : randomInt(1, 6),
      );
      await Promise.all(
        ctx.managers(30).map(async (locks, index) => {
          const weight = weights[index]!;
          const pool = locks.semaphore(key, { limit: 5 });
          for (let round = 0; round < rounds; round++) {
            await pool.withPermit((lock) => detector.hold(weight, () => sleep(2), lock), {
              weight,
              wait: CONTENTION_TIMEOUT_MS,
            });
          }
        }),
      );
      expect(detector.peak, `weights ${weights.join(',')}`).toBeLessThanOrEqual(5);
      // Permits really are shared: a semaphore that let one holder in at a time would pass the
      // bound above while being useless.
      expect(detector.peak).toBeGreaterThan(1);
      expect(detector.completed).toBe(30 * rounds);
    },
    CONTENTION_TIMEOUT_MS,
  );

  it.skipIf(!ctx.countsPermits)(
    'serves 50 contenders on a semaphore of 5: at most 5 out, all served, every fence distinct',
    async () => {
      const key = ctx.key();
      const detector = new OverlapDetector();
      const fences: number[] = [];
      await Promise.all(
        ctx.managers(50).map((locks) =>
          locks.semaphore(key, { limit: 5 }).withPermit(
            (lock) => {
              fences.push(lock.fence);
              return detector.hold(1, () => sleep(5), lock);
            },
            { wait: CONTENTION_TIMEOUT_MS },
          ),
        ),
      );
      expect(detector.peak).toBeLessThanOrEqual(5);
      expect(detector.peak).toBeGreaterThan(1);
      expect(detector.completed).toBe(50);
      // Grants that overlap may reach their holders in any order, so only compare them sorted.
      expect(new Set(fences).size).toBe(50);
      expectIncreasing([...fences].sort((a, b) => a - b));
    },
    CONTENTION_TIMEOUT_MS,
  );

  it.skipIf(!ctx.countsPermits)(
    'makes a weight-3 request on a limit of 5 wait while 3 are out, and grants it once 2 are',
    async () => {
      const key = ctx.key();
      const holders = ctx.managers(4);
      const [waiterSide] = ctx.managers(1);
      const held = await Promise.all(
        holders.map((locks) => locks.semaphore(key, { limit: 5 }).acquire()),
      );
      const pool = waiterSide!.semaphore(key, { limit: 5 });
      expect(await pool.tryAcquire({ weight: 3 })).toBeNull();
      let granted = false;
      const waiting = pool.acquire({ weight: 3, wait: 30_000 }).then((lock) => {
        granted = true;
        return lock;
      });
      await held[0]!.release();
      // 3 out, 2 free: the release woke the waiter (or it polled), and it must still wait.
      await sleep(200);
      expect(granted).toBe(false);
      await held[1]!.release();
      const lock = await waiting;
      expect(lock.held).toBe(true);
      // 3 taken by the waiter plus the 2 still held: the semaphore is full.
      expect(await holders[0]!.semaphore(key, { limit: 5 }).tryAcquire()).toBeNull();
      await Promise.all([lock.release(), ...held.slice(2).map((permit) => permit.release())]);
    },
  );

  it.runIf(!ctx.countsPermits)(
    'refuses the permits of a semaphore with InvalidArgumentError before any I/O, since it cannot count them',
    async () => {
      const counted = ctx.counted();
      const key = ctx.key();
      const [locks] = ctx.managers(1);
      const pool = new LockManager({ backend: counted.backend }).semaphore(key, { limit: 3 });
      const refusal = await rejectionOf(() => pool.acquire({ weight: 1 }));
      expect(refusal).toBeInstanceOf(InvalidArgumentError);
      expect((refusal as InvalidArgumentError).message).toMatch(/semaphore/);
      // Taking the whole limit is a mutex: that it can keep.
      const whole = await locks!.semaphore(key, { limit: 3 }).acquire({ weight: 3 });
      await whole.release();
    },
  );
}
