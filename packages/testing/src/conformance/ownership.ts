import { expect, it } from 'vitest';
import type { ConformanceContext } from './context.js';

export function ownershipTests(ctx: ConformanceContext): void {
  it('extends and releases only for the owner: a stale token gets false', async () => {
    const key = ctx.key();
    expect(
      (await ctx.backend.acquire({ key, token: 'owner', ttlMs: 10_000, limit: 1, weight: 1 })).ok,
    ).toBe(true);
    expect(await ctx.backend.extend({ key, token: 'stranger', ttlMs: 10_000 })).toBe(false);
    expect(await ctx.backend.release({ key, token: 'stranger' })).toBe(false);
    // The owner still holds it.
    expect(
      (await ctx.backend.acquire({ key, token: 'third', ttlMs: 10_000, limit: 1, weight: 1 })).ok,
    ).toBe(false);
    expect(await ctx.backend.extend({ key, token: 'owner', ttlMs: 10_000 })).toBe(true);
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(true);
  });

  it('releases once: the second release and a release of an unknown key get false', async () => {
    const key = ctx.key();
    await ctx.backend.acquire({ key, token: 'owner', ttlMs: 10_000, limit: 1, weight: 1 });
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(true);
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(false);
    expect(await ctx.backend.release({ key: ctx.key(), token: 'owner' })).toBe(false);
  });

  it('Lock.release() resolves false after a stale holder lost the lease', async () => {
    const key = ctx.key();
    const [first, second] = ctx.managers(2);
    const lock = await first!.acquire(key);
    expect(await lock.release()).toBe(true);
    expect(await lock.release()).toBe(false);
    const next = await second!.acquire(key);
    expect(next.fence).toBeGreaterThan(lock.fence);
    expect(await next.release()).toBe(true);
  });

  it('shows current holders through inspect', async ({ skip }) => {
    if (!ctx.backend.inspect) return skip('the backend has no inspect');
    const key = ctx.key();
    expect(await ctx.backend.inspect(key)).toBeNull();
    await ctx.backend.acquire({ key, token: 'owner', ttlMs: 10_000, limit: 3, weight: 2 });
    const info = await ctx.backend.inspect(key);
    expect(info?.holders).toHaveLength(1);
    expect(info?.holders[0]).toMatchObject({ token: 'owner', weight: 2 });
    expect(info?.holders[0]?.ttlMs).toBeGreaterThan(5_000);
    expect(info?.fence).toBeGreaterThan(0);
  });
}
