import { expect, it } from 'vitest';
import { type ConformanceContext, sleep } from './context.js';

/** Backoff so slow that only a wake-up from the backend can serve a waiter in time. */
const NO_POLLING = { backoff: { initialMs: 600_000, maxMs: 600_000 } };

export function wakeTests(ctx: ConformanceContext): void {
  it('waitForRelease resolves when the holder releases', async ({ skip }) => {
    const backend = ctx.backend;
    if (!backend.waitForRelease) return skip('the backend has no waitForRelease');
    const key = ctx.key();
    await backend.acquire({ key, token: 'holder', ttlMs: 10_000, limit: 1, weight: 1 });
    // A backend may wake a waiter once without a release (a Redis backend does when a new
    // subscription comes up, for the release it might have missed meanwhile): absorb that first.
    const priming = new AbortController();
    await Promise.race([backend.waitForRelease(key, priming.signal), sleep(500)]);
    priming.abort();
    let woken = false;
    const waiting = backend.waitForRelease(key, new AbortController().signal).then(() => {
      woken = true;
    });
    await sleep(50);
    expect(woken).toBe(false);
    await backend.release({ key, token: 'holder' });
    await waiting;
    expect(woken).toBe(true);
  });

  it('waitForRelease rejects with the reason when aborted', async ({ skip }) => {
    const backend = ctx.backend;
    if (!backend.waitForRelease) return skip('the backend has no waitForRelease');
    const controller = new AbortController();
    const waiting = backend.waitForRelease(ctx.key(), controller.signal);
    const reason = new Error('gave up');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  it('wakes a waiting acquire on release, with polling effectively off', async ({ skip }) => {
    if (!ctx.backend.waitForRelease) return skip('the backend has no waitForRelease');
    const key = ctx.key();
    const [holder, waiter] = ctx.managers(2, NO_POLLING);
    const lock = await holder!.acquire(key);
    const waiting = waiter!.acquire(key, { wait: 30_000 });
    await sleep(50);
    await lock.release();
    const next = await waiting;
    expect(next.fence).toBeGreaterThan(lock.fence);
    await next.release();
  });

  it('wakes a semaphore waiter when one permit comes back', async ({ skip }) => {
    if (!ctx.backend.waitForRelease) return skip('the backend has no waitForRelease');
    const key = ctx.key();
    const [holder, waiter] = ctx.managers(2, NO_POLLING);
    const permits = holder!.semaphore(key, { limit: 2 });
    const held = [await permits.acquire(), await permits.acquire()];
    const waiting = waiter!.semaphore(key, { limit: 2 }).acquire({ wait: 30_000 });
    await sleep(50);
    await held[0]!.release();
    const next = await waiting;
    expect(next.held).toBe(true);
    await Promise.all([next.release(), held[1]!.release()]);
  });
}
