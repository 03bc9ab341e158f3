import { expect, it } from 'vitest';
import { type ConformanceContext, eventually, sleep } from './context.js';

export function expiryTests(ctx: ConformanceContext): void {
  it('frees a lease when its TTL runs out', async () => {
    const key = ctx.key();
    const request = { key, ttlMs: 100, limit: 1, weight: 1 };
    expect((await ctx.backend.acquire({ ...request, token: 'old' })).ok).toBe(true);
    await eventually(
      'the expired lease can be taken',
      async () => (await ctx.backend.acquire({ ...request, token: 'new' })).ok,
    );
    // The old holder no longer owns anything.
    expect(await ctx.backend.extend({ key, token: 'old', ttlMs: 10_000 })).toBe(false);
    expect(await ctx.backend.release({ key, token: 'old' })).toBe(false);
  });

  it('extend keeps a lease alive past its first TTL', async () => {
    const key = ctx.key();
    const request = { key, limit: 1, weight: 1 };
    expect((await ctx.backend.acquire({ ...request, token: 'a', ttlMs: 1_000 })).ok).toBe(true);
    await sleep(100);
    expect(await ctx.backend.extend({ key, token: 'a', ttlMs: 5_000 })).toBe(true);
    await sleep(1_100);
    expect((await ctx.backend.acquire({ ...request, token: 'b', ttlMs: 1_000 })).ok).toBe(false);
    expect(await ctx.backend.release({ key, token: 'a' })).toBe(true);
  });

  it('reports the lease as lost to its holder once it expired', async () => {
    const key = ctx.key();
    const [holder, other] = ctx.managers(2);
    const lock = await holder!.acquire(key, { ttl: 100 });
    await eventually('another process gets the lock', async () => {
      const taken = await other!.tryAcquire(key, { ttl: 10_000 });
      return taken !== null;
    });
    expect(await lock.release()).toBe(false);
  });
}
