import { expect, it } from 'vitest';
import { type ConformanceContext, sleep } from './context.js';

export function readWriteTests(ctx: ConformanceContext): void {
  it('lets readers overlap and never overlaps a writer with anyone', async () => {
    const key = ctx.key();
    let readers = 0;
    let writers = 0;
    let violations = 0;
    let peakReaders = 0;
    await Promise.all(
      ctx.managers(8).map(async (locks, index) => {
        const lock = locks.readWriteLock(key);
        for (let round = 0; round < 5; round++) {
          if (index % 4 === 0) {
            await lock.write.withLock(
              async () => {
                writers += 1;
                if (writers > 1 || readers > 0) violations += 1;
                await sleep(2);
                writers -= 1;
              },
              { wait: 60_000 },
            );
          } else {
            await lock.read.withLock(
              async () => {
                readers += 1;
                peakReaders = Math.max(peakReaders, readers);
                if (writers > 0) violations += 1;
                await sleep(5);
                readers -= 1;
              },
              { wait: 60_000 },
            );
          }
        }
      }),
    );
    expect(violations).toBe(0);
    expect(peakReaders).toBeGreaterThan(1);
  });
}
