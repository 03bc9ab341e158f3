import { LockLostError } from '@deadbolt/core';
import { expect, it } from 'vitest';
import { CONTENTION_TIMEOUT_MS, type ConformanceContext, sleep } from './context.js';

export function multiKeyTests(ctx: ConformanceContext): void {
  it(
    'serves 12 contenders asking for overlapping sets of keys in different orders: no deadlock, one holder per key',
    async () => {
      const keys = Array.from({ length: 5 }, () => ctx.key());
      const holders = new Map(keys.map((key) => [key, 0]));
      let overlaps = 0;
      let served = 0;
      await Promise.all(
        ctx.managers(12).map(async (locks, contender) => {
          for (let round = 0; round < 4; round++) {
            // Each asks for three keys, starting at a different one and going round backwards
            // for odd contenders: orders that deadlock a naive lock-one-then-the-next.
            const start = (contender + round) % keys.length;
            const picked = [0, 1, 2].map((step) => {
              const offset = contender % 2 === 0 ? step : -step;
              return keys[(start + offset + keys.length) % keys.length] as string;
            });
            await locks.withAll(
              picked,
              async () => {
                for (const key of picked) {
                  holders.set(key, (holders.get(key) ?? 0) + 1);
                  if ((holders.get(key) ?? 0) > 1) overlaps += 1;
                }
                await sleep(2);
                for (const key of picked) holders.set(key, (holders.get(key) ?? 0) - 1);
                served += 1;
              },
              { wait: CONTENTION_TIMEOUT_MS },
            );
          }
        }),
      );
      expect(overlaps).toBe(0);
      expect(served).toBe(48);
    },
    CONTENTION_TIMEOUT_MS,
  );

  it('hands a held lock to another manager by its handle, which extends and releases it', async () => {
    const key = ctx.key();
    const [scheduler, worker, other] = ctx.managers(3);
    const lock = await scheduler!.acquire(key, { ttl: 10_000 });
    const resumed = await worker!.resume(lock.toHandle());
    expect(resumed.fence).toBe(lock.fence);
    await resumed.extend(20_000);
    expect(await other!.tryAcquire(key)).toBeNull();
    expect(await resumed.release()).toBe(true);
    // The scheduler's own lock is the same lease: gone too.
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    await expect(worker!.resume(lock.toHandle())).rejects.toBeInstanceOf(LockLostError);
  });
}
