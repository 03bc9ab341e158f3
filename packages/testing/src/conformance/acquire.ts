import { HANDOFF_LEASE_MS } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  CONTENTION_TIMEOUT_MS,
  type ConformanceContext,
  eventually,
  expectGranted,
  expectIncreasing,
  OverlapDetector,
  request,
  sleep,
} from './context.js';

export function acquireTests(ctx: ConformanceContext): void {
  it('grants a free key, refuses a second token while held, and grants it after release', async () => {
    const key = ctx.key();
    const first = expectGranted(await ctx.backend.acquire(request(key, 'a', { ttlMs: 10_000 })));
    // The lease granted may be shorter than asked, never longer.
    expect(first.ttlMs).toBeGreaterThan(0);
    expect(first.ttlMs).toBeLessThanOrEqual(10_000);
    const second = await ctx.backend.acquire(request(key, 'b'));
    expect(second.ok).toBe(false);
    if (!second.ok && second.retryInMs !== undefined) {
      // A hint beyond the holder's lease would make waiters sleep past the moment it frees up.
      expect(second.retryInMs).toBeGreaterThan(0);
      expect(second.retryInMs).toBeLessThanOrEqual(10_000);
    }
    expect(await ctx.backend.release({ key, token: 'a' })).toBe(true);
    expectGranted(await ctx.backend.acquire(request(key, 'b')));
  });

  it('keeps keys independent: holding one key does not block another', async () => {
    const [one, two] = [ctx.key(), ctx.key()];
    expectGranted(await ctx.backend.acquire(request(one, 'a')));
    expectGranted(await ctx.backend.acquire(request(two, 'b')));
    expect((await ctx.backend.acquire(request(one, 'c'))).ok).toBe(false);
  });

  it('lets a token that holds ask again (its reply was lost): the new grant replaces its own', async () => {
    const key = ctx.key();
    expectGranted(await ctx.backend.acquire(request(key, 'a')));
    expectGranted(await ctx.backend.acquire(request(key, 'a')));
    expect(await ctx.backend.release({ key, token: 'a' })).toBe(true);
    // One release frees it: the second grant replaced the first instead of adding to it.
    expectGranted(await ctx.backend.acquire(request(key, 'b')));
  });

  it.skipIf(!ctx.countsPermits)(
    'counts a re-asking token once on a semaphore, with the weight it asked last',
    async () => {
      const key = ctx.key();
      const permits = { limit: 3 };
      expectGranted(await ctx.backend.acquire(request(key, 'a', { ...permits, weight: 1 })));
      expectGranted(await ctx.backend.acquire(request(key, 'a', { ...permits, weight: 2 })));
      // 'a' holds 2 of 3 now (not 1, not 3): one more fits, two do not.
      expect((await ctx.backend.acquire(request(key, 'b', { ...permits, weight: 2 }))).ok).toBe(
        false,
      );
      expectGranted(await ctx.backend.acquire(request(key, 'c', { ...permits, weight: 1 })));
    },
  );

  it('tryAcquire resolves null while the lock is held and a lock once it is free', async () => {
    const key = ctx.key();
    const [holder, other] = ctx.managers(2);
    const lock = await holder!.acquire(key);
    expect(await other!.tryAcquire(key)).toBeNull();
    expect(await lock.release()).toBe(true);
    const next = await other!.tryAcquire(key);
    expect(next?.held).toBe(true);
    expect(next!.fence).toBeGreaterThan(lock.fence);
    await next?.release();
  });

  it(
    'keeps mutual exclusion among 50 concurrent contenders and serves every one',
    async () => {
      const key = ctx.key();
      const detector = new OverlapDetector();
      const rounds = 3;
      const served = new Array<number>(50).fill(0);
      // Entry order into an exclusive section is grant order, so these fences must increase.
      const fences: number[] = [];
      await Promise.all(
        ctx.managers(50).map(async (locks, contender) => {
          for (let round = 0; round < rounds; round++) {
            const lock = await locks.acquire(key, { wait: CONTENTION_TIMEOUT_MS });
            try {
              await detector.hold(
                1,
                async () => {
                  fences.push(lock.fence);
                  await sleep(1);
                },
                lock,
              );
              served[contender]! += 1;
            } finally {
              await lock.release();
            }
          }
        }),
      );
      expect(detector.peak).toBe(1);
      expect(served).toEqual(new Array(50).fill(rounds));
      expect(fences).toHaveLength(50 * rounds);
      expectIncreasing(fences);
    },
    CONTENTION_TIMEOUT_MS,
  );

  it('serves a waiting acquire once the holder releases, by a wake-up or by polling', async () => {
    const key = ctx.key();
    const [holder, waiter] = ctx.managers(2);
    const lock = await holder!.acquire(key);
    const waiting = waiter!.acquire(key, { wait: 30_000 });
    await sleep(50);
    expect(await lock.release()).toBe(true);
    const next = await waiting;
    expect(next.fence).toBeGreaterThan(lock.fence);
    expect(await next.release()).toBe(true);
  });

  it('rejects a waiting LockManager.acquire with the signal reason when aborted', async () => {
    const key = ctx.key();
    const [holder, waiter] = ctx.managers(2);
    const lock = await holder!.acquire(key);
    const controller = new AbortController();
    const waiting = waiter!.acquire(key, { wait: 30_000, signal: controller.signal });
    await sleep(50);
    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    // The aborted waiter took nothing: the holder still has it, and after it nobody does.
    expect(await waiter!.tryAcquire(key)).toBeNull();
    expect(await lock.release()).toBe(true);
    // The rejection does not wait for the give-back of the waiter's queue place, which a loaded
    // machine can delay past the holder's release; until it lands the release may hand the lock
    // to that place, for HANDOFF_LEASE_MS at most.
    await eventually(
      'the lock is free',
      async () => {
        const next = await waiter!.tryAcquire(key);
        if (next === null) return false;
        expect(next.held).toBe(true);
        await next.release();
        return true;
      },
      HANDOFF_LEASE_MS + 10_000,
    );
  });
}
