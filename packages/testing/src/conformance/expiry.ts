import { LockLostError } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  type ConformanceContext,
  eventually,
  expectGranted,
  request,
  sleep,
  withShortLease,
} from './context.js';

export function expiryTests(ctx: ConformanceContext): void {
  it('holds a lease for its TTL, then lets another token take it', async () => {
    // A backend that reads milliseconds as microseconds fails at every TTL.
    const { key } = await withShortLease(ctx, [300, 3_000], async (key, ttlMs) => {
      expectGranted(await ctx.backend.acquire(request(key, 'old', { ttlMs })));
      return !(await ctx.backend.acquire(request(key, 'new', { ttlMs }))).ok;
    });
    await eventually(
      'the expired lease can be taken',
      async () => (await ctx.backend.acquire(request(key, 'new'))).ok,
    );
    // The old holder owns nothing any more.
    expect(await ctx.backend.extend({ key, token: 'old', ttlMs: 30_000 })).toBe(false);
    expect(await ctx.backend.release({ key, token: 'old' })).toBe(false);
  });

  it.skipIf(!ctx.countsPermits)('expires each permit of a semaphore on its own lease', async () => {
    const key = ctx.key();
    const permits = { limit: 2 };
    expectGranted(await ctx.backend.acquire(request(key, 'short', { ...permits, ttlMs: 100 })));
    expectGranted(await ctx.backend.acquire(request(key, 'long', { ...permits })));
    await eventually(
      'the short permit is free again',
      async () => (await ctx.backend.acquire(request(key, 'next', permits))).ok,
    );
    // 'long' and 'next' hold both permits: the long lease did not expire with the short one.
    expect((await ctx.backend.acquire(request(key, 'more', permits))).ok).toBe(false);
    expect(await ctx.backend.release({ key, token: 'long' })).toBe(true);
  });

  it('extend keeps a lease alive past its first TTL', async () => {
    const { key, ttlMs } = await withShortLease(ctx, [1_000, 4_000], async (key, ttlMs) => {
      expectGranted(await ctx.backend.acquire(request(key, 'a', { ttlMs })));
      await sleep(100);
      return ctx.backend.extend({ key, token: 'a', ttlMs: 10_000 });
    });
    // Well past the first TTL, well inside the extended one.
    await sleep(ttlMs + 100);
    expect((await ctx.backend.acquire(request(key, 'b'))).ok).toBe(false);
    expect(await ctx.backend.release({ key, token: 'a' })).toBe(true);
  });

  it('extend sets the lease from now rather than adding to it, so it can also shorten it', async () => {
    const { key, ttlMs } = await withShortLease(ctx, [100, 1_000, 4_000], async (key, ttlMs) => {
      expectGranted(await ctx.backend.acquire(request(key, 'a', { ttlMs: 60_000 })));
      return ctx.backend.extend({ key, token: 'a', ttlMs });
    });
    await eventually(
      'the shortened lease ran out',
      async () => (await ctx.backend.acquire(request(key, 'b'))).ok,
      ttlMs + 10_000,
    );
  });

  it('tells a LockManager holder that its expired lease is lost', async () => {
    const key = ctx.key();
    const [holder, other] = ctx.managers(2);
    const lock = await holder!.acquire(key, { ttl: 100 });
    // The signal as a holder hands it to its work at the start: already aborted if the machine
    // stalled past the loss point since the grant, else told by its abort event.
    const kept = lock.signal;
    let heard: unknown = kept.aborted ? kept.reason : undefined;
    kept.addEventListener('abort', () => {
      heard = kept.reason;
    });
    await eventually(
      'another process gets the lock',
      async () => (await other!.tryAcquire(key)) !== null,
    );
    // Read at once: a backend that let the lease go before the holder's loss point fails here.
    // On a busy machine the timer that aborts the signal may not have run yet, so the lock judges
    // by the clock when read, and aborts the kept signal then.
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect(heard).toBe(lock.signal.reason);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(await lock.release()).toBe(false);
  });
}
