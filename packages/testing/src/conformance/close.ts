import { BackendError, DeadboltError, LockManager } from '@deadbolt/core';
import { expect, it } from 'vitest';
import { absorbFirstWakeUp, type ConformanceContext, rejectionOf } from './context.js';

export function closeTests(ctx: ConformanceContext): void {
  it('refuses every call after close() with BackendError, leaving nothing behind', async () => {
    const backend = ctx.backend;
    const key = ctx.key();
    await backend.close?.();
    const locks = new LockManager({ backend });
    const signal = new AbortController().signal;
    for (const call of [
      () => locks.acquire(key, { wait: 0 }),
      () => locks.tryAcquire(key),
      () => backend.extend({ key, token: 't', ttlMs: 1_000 }),
      () => backend.release({ key, token: 't' }),
      ...(backend.wakeUps ? [() => backend.wakeUps?.waitForRelease({ key, signal })] : []),
      ...(backend.inspection ? [() => backend.inspection?.inspect({ key })] : []),
      ...(backend.fences ? [() => backend.fences?.advance({ key, fence: 1 })] : []),
      ...(backend.listing ? [() => backend.listing?.list({})] : []),
    ]) {
      const error = await rejectionOf(call);
      expect(error).toBeInstanceOf(BackendError);
      expect(error).toBeInstanceOf(DeadboltError);
      expect(error).toMatchObject({ code: 'BACKEND' });
      expect(error.message).toMatch(/closed/);
    }
    // inspection too is refused now, so only the stored names can tell.
    expect(await ctx.leftovers([])).toEqual([]);
  });

  if (!ctx.has('wakeUps')) return;
  it('rejects a pending wait with BackendError when the backend closes', async () => {
    const backend = ctx.backend;
    const key = ctx.key();
    // Else the wait could end on the wake-up a Redis backend sends once it listens, before close().
    await absorbFirstWakeUp(ctx, key);
    const waiting = backend.wakeUps?.waitForRelease({ key, signal: new AbortController().signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await backend.close?.();
    await expect(waiting).rejects.toBeInstanceOf(BackendError);
  });
}
