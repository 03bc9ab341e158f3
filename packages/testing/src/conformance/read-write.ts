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

  it('serves a writer while readers keep arriving', async () => {
    const key = ctx.key();
    const [writerSide, ...readerSides] = ctx.managers(5);
    let stop = false;
    const readerLoops = readerSides.map(async (locks) => {
      const lock = locks.readWriteLock(key);
      while (!stop) await lock.read.withLock(() => sleep(10), { wait: 60_000 });
    });
    await sleep(50);
    // Readers overlap all the time; only writer priority lets the writer in.
    const writer = await writerSide!.readWriteLock(key).write.acquire({ wait: 10_000 });
    expect(writer.held).toBe(true);
    await writer.release();
    stop = true;
    await Promise.all(readerLoops);
  });
}
