import { LockLostError } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  type ConformanceContext,
  eventually,
  expectGranted,
  request,
  withShortLease,
} from './context.js';

export function ownershipTests(ctx: ConformanceContext): void {
  it('extends and releases only for the owner: another token gets false and changes nothing', async () => {
    const key = ctx.key();
    expectGranted(await ctx.backend.acquire(request(key, 'owner')));
    expect(await ctx.backend.extend({ key, token: 'stranger', ttlMs: 30_000 })).toBe(false);
    expect(await ctx.backend.release({ key, token: 'stranger' })).toBe(false);
    // The owner still holds it: a blind delete would have let this one in.
    expect((await ctx.backend.acquire(request(key, 'third'))).ok).toBe(false);
    expect(await ctx.backend.extend({ key, token: 'owner', ttlMs: 30_000 })).toBe(true);
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(true);
    expectGranted(await ctx.backend.acquire(request(key, 'third')));
  });

  it('releases once: a second release and a release on an unknown key get false', async () => {
    const key = ctx.key();
    expectGranted(await ctx.backend.acquire(request(key, 'owner')));
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(true);
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(false);
    expect(await ctx.backend.extend({ key, token: 'owner', ttlMs: 30_000 })).toBe(false);
    expect(await ctx.backend.release({ key: ctx.key(), token: 'owner' })).toBe(false);
    expect(await ctx.backend.extend({ key: ctx.key(), token: 'owner', ttlMs: 30_000 })).toBe(false);
  });

  it('gives a stale holder false after its lease expired and leaves the new holder alone', async () => {
    const { key, ttlMs } = await withShortLease(
      ctx,
      [100, 1_000, 4_000],
      async (key, ttlMs) => (await ctx.backend.acquire(request(key, 'stale', { ttlMs }))).ok,
    );
    await eventually(
      'the expired lease can be taken',
      async () => (await ctx.backend.acquire(request(key, 'fresh'))).ok,
      ttlMs + 10_000,
    );
    expect(await ctx.backend.extend({ key, token: 'stale', ttlMs: 30_000 })).toBe(false);
    expect(await ctx.backend.release({ key, token: 'stale' })).toBe(false);
    expect((await ctx.backend.acquire(request(key, 'third'))).ok).toBe(false);
    expect(await ctx.backend.release({ key, token: 'fresh' })).toBe(true);
  });

  it.skipIf(!ctx.countsPermits)(
    'gives back only what the releasing token holds on a semaphore',
    async () => {
      const key = ctx.key();
      const permits = { limit: 3 };
      expectGranted(await ctx.backend.acquire(request(key, 'a', { ...permits, weight: 2 })));
      expectGranted(await ctx.backend.acquire(request(key, 'b', { ...permits, weight: 1 })));
      expect(await ctx.backend.release({ key, token: 'stranger' })).toBe(false);
      expect((await ctx.backend.acquire(request(key, 'c', permits))).ok).toBe(false);
      expect(await ctx.backend.release({ key, token: 'a' })).toBe(true);
      // 'b' still holds its one permit: two are free, not three.
      expectGranted(await ctx.backend.acquire(request(key, 'c', { ...permits, weight: 2 })));
      expect((await ctx.backend.acquire(request(key, 'd', permits))).ok).toBe(false);
    },
  );

  it('makes Lock.extend() throw LockLostError once another holder took the lock over', async () => {
    const key = ctx.key();
    const [first, second] = ctx.managers(2);
    const lock = await first!.acquire(key, { ttl: 30_000 });
    // Freed behind the holder's back (as `deadbolt release --force` does): the holder's own
    // timers still think it holds, so only the backend's answer can tell it otherwise.
    expect(await ctx.backend.release({ key, token: lock.token })).toBe(true);
    const next = await second!.acquire(key, { wait: 10_000 });
    expect(next.fence).toBeGreaterThan(lock.fence);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect(await lock.release()).toBe(false);
    expect(next.held).toBe(true);
    expect(await next.release()).toBe(true);
  });
}
