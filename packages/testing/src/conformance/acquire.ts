import { expect, it } from 'vitest';
import { type ConformanceContext, OverlapDetector, sleep } from './context.js';

export function acquireTests(ctx: ConformanceContext): void {
  const request = (key: string, token: string) => ({
    key,
    token,
    ttlMs: 10_000,
    limit: 1,
    weight: 1,
  });

  it('grants a free key once and refuses a second token with a retry hint', async () => {
    const key = ctx.key();
    const first = await ctx.backend.acquire(request(key, 'token-a'));
    expect(first).toMatchObject({ ok: true });
    const second = await ctx.backend.acquire(request(key, 'token-b'));
    expect(second.ok).toBe(false);
    if (!second.ok && second.retryInMs !== undefined) {
      expect(second.retryInMs).toBeGreaterThan(0);
      expect(second.retryInMs).toBeLessThanOrEqual(10_000);
    }
  });

  it('lets a token that already holds ask again (its reply was lost) without a second grant', async () => {
    const key = ctx.key();
    expect((await ctx.backend.acquire(request(key, 'token-a'))).ok).toBe(true);
    expect((await ctx.backend.acquire(request(key, 'token-a'))).ok).toBe(true);
    expect(await ctx.backend.release({ key, token: 'token-a' })).toBe(true);
    // One release frees it: the second grant replaced the first instead of adding to it.
    expect((await ctx.backend.acquire(request(key, 'token-b'))).ok).toBe(true);
  });

  it('tryAcquire resolves null while the lock is held', async () => {
    const key = ctx.key();
    const [holder, other] = ctx.managers(2);
    const lock = await holder!.acquire(key);
    expect(await other!.tryAcquire(key)).toBeNull();
    await lock.release();
    const next = await other!.tryAcquire(key);
    expect(next).not.toBeNull();
    await next?.release();
  });

  it('keeps mutual exclusion among 50 concurrent contenders', async () => {
    const key = ctx.key();
    const detector = new OverlapDetector();
    const rounds = 3;
    await Promise.all(
      ctx.managers(50).map(async (locks) => {
        for (let round = 0; round < rounds; round++) {
          await locks.withLock(key, () => detector.hold(1, () => sleep(1)), { wait: 60_000 });
        }
      }),
    );
    expect(detector.peak).toBe(1);
    expect(detector.completed).toBe(50 * rounds);
  });
}
