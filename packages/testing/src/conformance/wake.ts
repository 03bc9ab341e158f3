import { expect, it, type TestContext } from 'vitest';
import {
  absorbFirstWakeUp,
  type ConformanceContext,
  expectGranted,
  request,
  sleep,
  type WaitingBackend,
} from './context.js';

/** Backoff so slow that only a wake-up from the backend can serve a waiter in time. */
const NO_POLLING = { backoff: { initialMs: 600_000, maxMs: 600_000 } };

/**
 * Runs `body` on a backend with `waitForRelease`. Without one, waiting falls back to
 * LockManager's backoff: the test then proves that fallback serves a waiter and is reported as
 * skipped, so a backend never gets credit for wake-ups it does not have.
 */
function withWakeUps(
  ctx: ConformanceContext,
  body: (backend: WaitingBackend) => Promise<void>,
): (context: TestContext) => Promise<void> {
  return async ({ skip }) => {
    const backend = ctx.backend;
    if (backend.waitForRelease === undefined) {
      await backoffServesWaiter(ctx);
      skip('the backend has no waitForRelease: checked that backoff serves a waiter instead');
    }
    await body(backend as WaitingBackend);
  };
}

async function backoffServesWaiter(ctx: ConformanceContext): Promise<void> {
  const key = ctx.key();
  const [holder, waiter] = ctx.managers(2);
  const lock = await holder!.acquire(key);
  const waiting = waiter!.acquire(key, { wait: 30_000 });
  await sleep(50);
  expect(await lock.release()).toBe(true);
  const next = await waiting;
  expect(next.fence).toBeGreaterThan(lock.fence);
  expect(await next.release()).toBe(true);
}

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
  it(
    'waitForRelease stays pending while the key is held and resolves when it is released',
    withWakeUps(ctx, async (backend) => {
      const key = ctx.key();
      expectGranted(await backend.acquire(request(key, 'holder')));
      await absorbFirstWakeUp(backend, key);
      const waiting = backend.waitForRelease({ key, signal: new AbortController().signal });
      const watched = watch(waiting);
      await sleep(100);
      expect(watched.state()).toBe('pending');
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      await waiting;
      expect(watched.state()).toBe('resolved');
    }),
  );

  it(
    'waitForRelease rejects with the signal reason, whether aborted before or while waiting',
    withWakeUps(ctx, async (backend) => {
      const key = ctx.key();
      const before = new AbortController();
      before.abort(new Error('aborted before'));
      await expect(backend.waitForRelease({ key, signal: before.signal })).rejects.toBe(
        before.signal.reason,
      );
      await absorbFirstWakeUp(backend, key);
      const during = new AbortController();
      const waiting = backend.waitForRelease({ key, signal: during.signal });
      await sleep(20);
      const reason = new Error('gave up');
      during.abort(reason);
      await expect(waiting).rejects.toBe(reason);
    }),
  );

  it(
    'wakes every waiter of a key on one release, and an aborted one does not disturb the rest',
    withWakeUps(ctx, async (backend) => {
      const key = ctx.key();
      expectGranted(await backend.acquire(request(key, 'holder')));
      await absorbFirstWakeUp(backend, key);
      const quitter = new AbortController();
      const leaving = watch(backend.waitForRelease({ key, signal: quitter.signal }));
      const staying = [1, 2, 3].map(() =>
        backend.waitForRelease({ key, signal: new AbortController().signal }),
      );
      const watched = staying.map(watch);
      await sleep(50);
      quitter.abort(new Error('left early'));
      await sleep(50);
      expect(leaving.state()).toBe('rejected');
      expect(watched.map((one) => one.state())).toEqual(['pending', 'pending', 'pending']);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      await Promise.all(staying);
    }),
  );

  it(
    'wakes a waiting acquire on release, with polling effectively off',
    withWakeUps(ctx, async () => {
      const key = ctx.key();
      const [holder, waiter] = ctx.managers(2, NO_POLLING);
      const lock = await holder!.acquire(key);
      const waiting = waiter!.acquire(key, { wait: 30_000 });
      await sleep(50);
      expect(await lock.release()).toBe(true);
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(lock.fence);
      expect(await next.release()).toBe(true);
    }),
  );

  it(
    'wakes a semaphore waiter when one permit comes back, with polling effectively off',
    withWakeUps(ctx, async () => {
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
    }),
  );

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
    const next = await waiter!.tryAcquire(key);
    expect(next?.held).toBe(true);
    await next?.release();
  });
}
