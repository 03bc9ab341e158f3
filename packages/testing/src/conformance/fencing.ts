import type { LockBackend } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  type ConformanceContext,
  eventually,
  expectGranted,
  expectIncreasing,
  request,
  withFeature,
  withShortLease,
} from './context.js';

type FencingBackend = LockBackend & Required<Pick<LockBackend, 'fences'>>;

export function fencingTests(ctx: ConformanceContext): void {
  it('grants strictly increasing fences over 100 acquisitions by changing holders', async () => {
    const key = ctx.key();
    const fences: number[] = [];
    for (let index = 0; index < 100; index++) {
      // Holders alternate and sometimes repeat, so no fence can come from a per-token counter.
      const token = `t${index % 7}`;
      fences.push(expectGranted(await ctx.backend.acquire(request(key, token))).fence);
      expect(await ctx.backend.release({ key, token })).toBe(true);
    }
    expectIncreasing(fences);
  });

  it('keeps fences increasing across an expired lease', async () => {
    let first = 0;
    const { key, ttlMs } = await withShortLease(ctx, [100, 1_000, 4_000], async (key, ttlMs) => {
      const reply = await ctx.backend.acquire(request(key, 'a', { ttlMs }));
      if (reply.ok) first = reply.fence;
      return reply.ok;
    });
    const expiry = ttlMs + 10_000;
    let second: number | undefined;
    await eventually(
      'the expired lease can be taken',
      async () => {
        const reply = await ctx.backend.acquire(request(key, 'b', { ttlMs }));
        if (reply.ok) second = reply.fence;
        return reply.ok;
      },
      expiry,
    );
    // The key may have vanished with its lease (Redis expires it): the fence must not restart.
    expect(second).toBeGreaterThan(first);
    await eventually(
      'the second lease expired too',
      async () => {
        const reply = await ctx.backend.acquire(request(key, 'c', { ttlMs: 10_000 }));
        if (reply.ok) expect(reply.fence).toBeGreaterThan(second!);
        return reply.ok;
      },
      expiry,
    );
  });

  it.skipIf(!ctx.countsPermits)(
    'gives concurrent permit holders distinct, increasing fences',
    async () => {
      const key = ctx.key();
      const fences: number[] = [];
      for (let index = 0; index < 5; index++) {
        const reply = await ctx.backend.acquire(request(key, `p${index}`, { limit: 5 }));
        fences.push(expectGranted(reply).fence);
      }
      expectIncreasing(fences);
    },
  );

  it('gives a token that asks again a new, greater fence', async () => {
    const key = ctx.key();
    const first = expectGranted(await ctx.backend.acquire(request(key, 'a')));
    const again = expectGranted(await ctx.backend.acquire(request(key, 'a')));
    expect(again.fence).toBeGreaterThan(first.fence);
  });
}

export function fenceAdvanceTests(ctx: ConformanceContext): void {
  it('counts past a fence written back with fences.advance, and never goes back', async () => {
    const backend = withFeature<FencingBackend>(ctx, 'fences');
    const key = ctx.key();
    const first = expectGranted(await backend.acquire(request(key, 'a')));
    const far = first.fence + 1_000_000;
    await backend.fences.advance({ key, fence: far });
    await backend.release({ key, token: 'a' });
    const next = expectGranted(await backend.acquire(request(key, 'b')));
    expect(next.fence).toBeGreaterThan(far);
    // Advancing to a lower fence never moves it back.
    await backend.fences.advance({ key, fence: 1 });
    await backend.release({ key, token: 'b' });
    const last = expectGranted(await backend.acquire(request(key, 'c')));
    expect(last.fence).toBeGreaterThan(next.fence);
  });

  it('keeps an advanced fence for a key nobody holds', async () => {
    const backend = withFeature<FencingBackend>(ctx, 'fences');
    const key = ctx.key();
    const far = Number.MAX_SAFE_INTEGER - 1_000_000;
    await backend.fences.advance({ key, fence: far });
    const next = expectGranted(await backend.acquire(request(key, 'a')));
    expect(next.fence).toBeGreaterThan(far);
  });
}
