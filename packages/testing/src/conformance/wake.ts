import { InvalidArgumentError } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  absorbFirstWakeUp,
  type ConformanceContext,
  expectGranted,
  rejectionOf,
  request,
  sleep,
  type WakingBackend,
  withFeature,
} from './context.js';

/** Backoff so slow that only a wake-up from the backend can serve a waiter in time. */
const NO_POLLING = { backoff: { initialMs: 600_000, maxMs: 600_000 } };

/** Tracks whether a waitForRelease promise settled, and how. */
function watch(promise: Promise<unknown>): { state: () => 'pending' | 'resolved' | 'rejected' } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => {
      state = 'resolved';
    },
    () => {
      state = 'rejected';
    },
  );
  return { state: () => state };
}

export function wakeTests(ctx: ConformanceContext): void {
  it('waitForRelease stays pending while the key is held and resolves when it is released', async () => {
    const backend = withFeature<WakingBackend>(ctx, 'wakeUps');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    await absorbFirstWakeUp(ctx, key);
    const waiting = backend.wakeUps.waitForRelease({ key, signal: new AbortController().signal });
    const watched = watch(waiting);
    await sleep(100);
    expect(watched.state()).toBe('pending');
    expect(await backend.release({ key, token: 'holder' })).toBe(true);
    await waiting;
    expect(watched.state()).toBe('resolved');
  });

  it('waitForRelease rejects with the signal reason, whether aborted before or while waiting', async () => {
    const backend = withFeature<WakingBackend>(ctx, 'wakeUps');
    const key = ctx.key();
    const before = new AbortController();
    before.abort(new Error('aborted before'));
    await expect(backend.wakeUps.waitForRelease({ key, signal: before.signal })).rejects.toBe(
      before.signal.reason,
    );
    await absorbFirstWakeUp(ctx, key);
    const during = new AbortController();
    const waiting = backend.wakeUps.waitForRelease({ key, signal: during.signal });
    await sleep(20);
    const reason = new Error('gave up');
    during.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  it('wakes every waiter of a key on one release, and an aborted one does not disturb the rest', async () => {
    const backend = withFeature<WakingBackend>(ctx, 'wakeUps');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    await absorbFirstWakeUp(ctx, key);
    const quitter = new AbortController();
    const leaving = watch(backend.wakeUps.waitForRelease({ key, signal: quitter.signal }));
    const staying = [1, 2, 3].map(() =>
      backend.wakeUps.waitForRelease({ key, signal: new AbortController().signal }),
    );
    const watched = staying.map(watch);
    await sleep(50);
    quitter.abort(new Error('left early'));
    await sleep(50);
    expect(leaving.state()).toBe('rejected');
    expect(watched.map((one) => one.state())).toEqual(['pending', 'pending', 'pending']);
    expect(await backend.release({ key, token: 'holder' })).toBe(true);
    await Promise.all(staying);
  });

  it('resolves at once a wait whose caller missed a release since `since`, not one from before', async () => {
    const backend = withFeature<WakingBackend>(ctx, 'wakeUps');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    await absorbFirstWakeUp(ctx, key);
    const attemptedAt = Date.now();
    expect((await backend.acquire(request(key, 'waiter'))).ok).toBe(false);
    // The release lands while the waiter is busy elsewhere, before it waits.
    expect(await backend.release({ key, token: 'holder' })).toBe(true);
    await sleep(50);
    const signal = new AbortController().signal;
    const missed = watch(backend.wakeUps.waitForRelease({ key, signal, since: attemptedAt }));
    const later = watch(backend.wakeUps.waitForRelease({ key, signal, since: Date.now() + 1 }));
    await sleep(100);
    expect(missed.state()).toBe('resolved');
    expect(later.state()).toBe('pending');
    expectGranted(await backend.acquire(request(key, 'waiter')));
    expect(await backend.release({ key, token: 'waiter' })).toBe(true);
    await sleep(100);
    expect(later.state()).toBe('resolved');
  });

  it('wakes a waiting acquire on release, with polling effectively off', async () => {
    const key = ctx.key();
    const [holder, waiter] = ctx.managers(2, NO_POLLING);
    const lock = await holder!.acquire(key);
    const waiting = waiter!.acquire(key, { wait: 30_000 });
    await sleep(50);
    expect(await lock.release()).toBe(true);
    const next = await waiting;
    expect(next.fence).toBeGreaterThan(lock.fence);
    expect(await next.release()).toBe(true);
  });

  it.skipIf(!ctx.countsPermits)(
    'wakes a semaphore waiter when one permit comes back, with polling effectively off',
    async () => {
      const key = ctx.key();
      const [holder, waiter] = ctx.managers(2, NO_POLLING);
      const permits = holder!.semaphore(key, { limit: 2 });
      const held = [await permits.acquire(), await permits.acquire()];
      const waiting = waiter!.semaphore(key, { limit: 2 }).acquire({ wait: 30_000 });
      await sleep(50);
      expect(await held[0]!.release()).toBe(true);
      const next = await waiting;
      expect(next.held).toBe(true);
      await Promise.all([next.release(), held[1]!.release()]);
    },
  );

  it('refuses a bad waitForRelease before listening, and rejects an aborted one with its reason', async () => {
    const backend = withFeature<WakingBackend>(ctx, 'wakeUps');
    const key = ctx.key();
    const valid = { key, signal: new AbortController().signal };
    for (const [request, argument] of [
      [{ ...valid, signal: {} }, 'request.signal'],
      [{ ...valid, signal: null }, 'request.signal'],
      [{ ...valid, since: Number.NaN }, 'request.since'],
    ] as const) {
      const error = await rejectionOf(() => backend.wakeUps.waitForRelease(request as never));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument });
      expect(error.message).toContain(`invalid ${argument}: `);
    }
    const reason = new Error('gave up');
    const error = await rejectionOf(() =>
      backend.wakeUps.waitForRelease({ key, signal: AbortSignal.abort(reason) }),
    );
    expect(error).toBe(reason);
    expect(await ctx.leftovers([key])).toEqual([]);
  });
}
