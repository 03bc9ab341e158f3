import { expect, it } from 'vitest';
import { type ConformanceContext, OverlapDetector, sleep } from './context.js';

export function semaphoreTests(ctx: ConformanceContext): void {
  it('never lets weighted permits exceed the limit', async () => {
    const key = ctx.key();
    const detector = new OverlapDetector();
    await Promise.all(
      ctx.managers(30).map(async (locks, index) => {
        const weight = (index % 3) + 1;
        const pool = locks.semaphore(key, { limit: 5 });
        for (let round = 0; round < 2; round++) {
          await pool.withPermit(() => detector.hold(weight, () => sleep(2)), {
            weight,
            wait: 60_000,
          });
        }
      }),
    );
    expect(detector.peak).toBeLessThanOrEqual(5);
    expect(detector.peak).toBeGreaterThan(1);
    expect(detector.completed).toBe(60);
  });

  it('serves 50 contenders on a semaphore of 5: at most 5 out, all served, fences increasing', async () => {
    const key = ctx.key();
    const detector = new OverlapDetector();
    const fences: number[] = [];
    await Promise.all(
      ctx.managers(50).map((locks) =>
        locks.semaphore(key, { limit: 5 }).withPermit(
          (lock) => {
            fences.push(lock.fence);
            return detector.hold(1, () => sleep(5));
          },
          { wait: 60_000 },
        ),
      ),
    );
    expect(detector.peak).toBeLessThanOrEqual(5);
    expect(detector.completed).toBe(50);
    expect(fences).toEqual([...fences].sort((a, b) => a - b));
    expect(new Set(fences).size).toBe(50);
  });

  it('makes a weight-3 request wait while 3 of 5 are out, and grants it once enough are back', async () => {
    const key = ctx.key();
    const [holders, waiter] = [ctx.managers(3), ctx.managers(1)[0]!];
    const held = await Promise.all(
      holders.map((locks) => locks.semaphore(key, { limit: 5 }).acquire()),
    );
    const pool = waiter.semaphore(key, { limit: 5 });
    expect(await pool.tryAcquire({ weight: 3 })).toBeNull();
    let granted = false;
    const waiting = pool.acquire({ weight: 3, wait: 30_000 }).then((lock) => {
      granted = true;
      return lock;
    });
    await sleep(100);
    expect(granted).toBe(false);
    await held[0]!.release();
    const lock = await waiting;
    expect(lock.held).toBe(true);
    await Promise.all([lock.release(), ...held.slice(1).map((permit) => permit.release())]);
  });
}
