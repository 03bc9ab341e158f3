import { expect, it } from 'vitest';
import { type ConformanceContext, sleep } from './context.js';

export function fencingTests(ctx: ConformanceContext): void {
  it('grants strictly increasing fences across holders', async () => {
    const key = ctx.key();
    const fences: number[] = [];
    for (let index = 0; index < 20; index++) {
      const reply = await ctx.backend.acquire({
        key,
        token: `t${index}`,
        ttlMs: 10_000,
        limit: 1,
        weight: 1,
      });
      if (!reply.ok) throw new Error('expected a grant');
      fences.push(reply.fence);
      await ctx.backend.release({ key, token: `t${index}` });
    }
    for (let index = 1; index < fences.length; index++) {
      expect(fences[index]).toBeGreaterThan(fences[index - 1]!);
    }
    expect(fences.every(Number.isSafeInteger)).toBe(true);
  });

  it('keeps fences increasing after a lease expires', async () => {
    const key = ctx.key();
    const first = await ctx.backend.acquire({ key, token: 'a', ttlMs: 100, limit: 1, weight: 1 });
    await sleep(150);
    const second = await ctx.backend.acquire({ key, token: 'b', ttlMs: 100, limit: 1, weight: 1 });
    if (!first.ok || !second.ok) throw new Error('expected two grants');
    expect(second.fence).toBeGreaterThan(first.fence);
  });

  it('gives concurrent permit holders distinct, increasing fences', async () => {
    const key = ctx.key();
    const fences: number[] = [];
    for (let index = 0; index < 5; index++) {
      const reply = await ctx.backend.acquire({
        key,
        token: `p${index}`,
        ttlMs: 10_000,
        limit: 5,
        weight: 1,
      });
      if (!reply.ok) throw new Error('expected a grant');
      fences.push(reply.fence);
    }
    expect([...fences].sort((a, b) => a - b)).toEqual(fences);
    expect(new Set(fences).size).toBe(5);
  });

  it('counts past a fence written back with advanceFence', async ({ skip }) => {
    if (!ctx.backend.advanceFence)
      return skip('the backend has no advanceFence (it cannot join a quorum)');
    const key = ctx.key();
    const reply = await ctx.backend.acquire({
      key,
      token: 'a',
      ttlMs: 10_000,
      limit: 1,
      weight: 1,
    });
    if (!reply.ok) throw new Error('expected a grant');
    const far = reply.fence + 1_000_000;
    await ctx.backend.advanceFence({ key, fence: far });
    await ctx.backend.release({ key, token: 'a' });
    const next = await ctx.backend.acquire({ key, token: 'b', ttlMs: 10_000, limit: 1, weight: 1 });
    if (!next.ok) throw new Error('expected a grant');
    expect(next.fence).toBeGreaterThan(far);
  });
}
