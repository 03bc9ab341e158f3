import { QUEUE_PLACE_TTL_MS } from '@deadbolt/core';
import { expect, it } from 'vitest';
import { type ConformanceContext, eventually, sleep } from './context.js';

export function fairTests(ctx: ConformanceContext): void {
  it('grants a fair lock in arrival order', async () => {
    const key = ctx.key();
    const [holderSide, ...waiterSides] = ctx.managers(21);
    const holder = await holderSide!.acquire(key);
    const order: number[] = [];
    const waiting: Promise<void>[] = [];
    for (const [index, locks] of waiterSides.entries()) {
      waiting.push(
        locks.acquire(key, { fair: true, wait: 60_000 }).then(async (lock) => {
          order.push(index);
          await lock.release();
        }),
      );
      // The next waiter arrives only once this one has its queue place.
      const backend = ctx.backend;
      if (backend.inspect) {
        await eventually(
          `waiter ${index} is queued`,
          async () => (await backend.inspect?.(key))?.queued === index + 1,
        );
      } else {
        await sleep(50);
      }
    }
    await holder.release();
    await Promise.all(waiting);
    expect(order).toEqual(waiterSides.map((_, index) => index));
  });

  it(`a dead waiter stops blocking a fair queue within ${QUEUE_PLACE_TTL_MS} ms`, async () => {
    const key = ctx.key();
    const request = { key, ttlMs: 30_000, limit: 1, weight: 1 };
    expect((await ctx.backend.acquire({ ...request, token: 'holder' })).ok).toBe(true);
    // A waiter takes a queue place and then never attempts again, as if its process died.
    await ctx.backend.acquire({ ...request, token: 'dead', queueTtlMs: QUEUE_PLACE_TTL_MS });
    await ctx.backend.release({ key, token: 'holder' });
    const [next] = ctx.managers(1);
    const lock = await next!.acquire(key, { fair: true, wait: QUEUE_PLACE_TTL_MS + 5_000 });
    expect(lock.held).toBe(true);
    await lock.release();
  });

  it('keeps the new place of a waiter that asks again after its old place ran out', async () => {
    const key = ctx.key();
    const request = { key, ttlMs: 30_000, limit: 1, weight: 1 };
    const queued = (token: string, queueTtlMs = 10_000) =>
      ctx.backend.acquire({ ...request, token, queueTtlMs });
    expect((await ctx.backend.acquire({ ...request, token: 'holder' })).ok).toBe(true);
    expect((await queued('paused', 100)).ok).toBe(false);
    // Paused past its place's TTL: the place ran out, and asking again takes a new one.
    await sleep(200);
    expect((await queued('paused')).ok).toBe(false);
    expect((await queued('later')).ok).toBe(false);
    await ctx.backend.release({ key, token: 'holder' });
    // 'paused' queued again before 'later' did: it is first.
    expect((await queued('later')).ok).toBe(false);
    expect((await queued('paused')).ok).toBe(true);
  });

  it('refuses an unqueued request while someone queues (a waiting writer blocks readers)', async () => {
    const key = ctx.key();
    const request = { key, ttlMs: 30_000, limit: 5, weight: 1 };
    expect((await ctx.backend.acquire({ ...request, token: 'reader' })).ok).toBe(true);
    const writer = await ctx.backend.acquire({
      ...request,
      weight: 5,
      token: 'writer',
      queueTtlMs: 5_000,
    });
    expect(writer.ok).toBe(false);
    expect((await ctx.backend.acquire({ ...request, token: 'late-reader' })).ok).toBe(false);
    await ctx.backend.release({ key, token: 'reader' });
    const retried = await ctx.backend.acquire({
      ...request,
      weight: 5,
      token: 'writer',
      queueTtlMs: 5_000,
    });
    expect(retried.ok).toBe(true);
  });
}
