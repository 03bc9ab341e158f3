import { InvalidArgumentError, LockManager, QUEUE_PLACE_TTL_MS } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});

/** Separate managers act like separate processes: only the backend orders them. */
function processes(backend: MemoryBackend, count: number): LockManager[] {
  return Array.from({ length: count }, () => new LockManager({ backend }));
}

describe('fair locks', () => {
  it('grants in arrival order across processes', async () => {
    vi.useFakeTimers();
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend }).acquire('fair:order');
    const order: number[] = [];
    const waiters: Promise<void>[] = [];
    for (const [index, locks] of processes(backend, 20).entries()) {
      waiters.push(
        locks.acquire('fair:order', { fair: true, wait: 60_000 }).then((lock) => {
          order.push(index);
          return lock.release().then(() => undefined);
        }),
      );
      // Each waiter takes its queue place before the next one arrives.
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(100);
    await holder.release();
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(waiters);
    expect(order).toEqual(Array.from({ length: 20 }, (_, index) => index));
  });

  it('a waiter that gives up leaves the queue at once', async () => {
    vi.useFakeTimers();
    const backend = new MemoryBackend();
    const [holderLocks, quitter, patient] = processes(backend, 3);
    const holder = await holderLocks!.acquire('fair:quit');
    const quitting = quitter!.acquire('fair:quit', { fair: true, wait: 50 }).catch((e) => e);
    await vi.advanceTimersByTimeAsync(10);
    const waiting = patient!.acquire('fair:quit', { fair: true, wait: 60_000 });
    await vi.advanceTimersByTimeAsync(60);
    expect(await quitting).toMatchObject({ code: 'LOCK_TIMEOUT' });
    const releasedAt = Date.now();
    await holder.release();
    await vi.advanceTimersByTimeAsync(1);
    const lock = await waiting;
    // Served on the release itself, not after the quitter's place ran out.
    expect(Date.now() - releasedAt).toBeLessThan(QUEUE_PLACE_TTL_MS);
    await lock.release();
  });

  it(`a waiter that died stops blocking the queue within ${QUEUE_PLACE_TTL_MS} ms`, async () => {
    vi.useFakeTimers();
    const backend = new MemoryBackend();
    const request = { key: 'fair:dead', ttlMs: 30_000, limit: 1, weight: 1 };
    await backend.acquire({ ...request, token: 'holder' });
    // A waiter took a queue place behind the holder, then vanished without attempting again.
    const refused = await backend.queue.acquire({
      ...request,
      token: 'dead',
      placeTtlMs: QUEUE_PLACE_TTL_MS,
    });
    expect(refused.ok).toBe(false);
    await backend.release({ key: 'fair:dead', token: 'holder' });
    const startedAt = Date.now();
    let servedAt = Number.NaN;
    const served = new LockManager({ backend })
      .acquire('fair:dead', { fair: true, wait: 60_000 })
      .then((lock) => {
        servedAt = Date.now();
        return lock.release();
      });
    await vi.advanceTimersByTimeAsync(QUEUE_PLACE_TTL_MS + 1_000);
    await served;
    expect(servedAt - startedAt).toBeLessThanOrEqual(QUEUE_PLACE_TTL_MS + 1_000);
    expect(servedAt - startedAt).toBeGreaterThan(0);
  });

  it('rejects a non-boolean fair', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    await expect(locks.acquire('k', { fair: 'yes' as never })).rejects.toThrow(
      InvalidArgumentError,
    );
    expect(() => locks.semaphore('k', { limit: 2, fair: 1 as never })).toThrow('options.fair');
    expect(() => locks.readWriteLock('k', { fair: null as never })).toThrow('options.fair');
    expect(
      () => new LockManager({ backend: new MemoryBackend(), defaults: { fair: 'no' as never } }),
    ).toThrow('options.defaults.fair');
  });
});

describe('readWriteLock', () => {
  it('lets readers share and keeps writers exclusive', async () => {
    const backend = new MemoryBackend();
    const [a, b, c] = processes(backend, 3).map((locks) => locks.readWriteLock('rw:share'));
    const first = await a!.read.acquire();
    const second = await b!.read.acquire();
    expect(await c!.write.tryAcquire()).toBeNull();
    await first.release();
    await second.release();
    const writer = await c!.write.acquire();
    expect(await a!.read.tryAcquire()).toBeNull();
    expect(await b!.write.tryAcquire()).toBeNull();
    await writer.release();
  });

  it('a waiting writer blocks new readers, so readers cannot starve it', async () => {
    const backend = new MemoryBackend();
    const [readerSide, writerSide, lateReader] = processes(backend, 3).map((locks) =>
      locks.readWriteLock('rw:starve'),
    );
    const reading = await readerSide!.read.acquire();
    const writing = writerSide!.write.acquire({ wait: 10_000 });
    // Let the writer take its queue place.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await lateReader!.read.tryAcquire()).toBeNull();
    await reading.release();
    const writer = await writing;
    expect(writer.held).toBe(true);
    await writer.release();
    expect(await lateReader!.read.tryAcquire()).not.toBeNull();
  });

  it('never overlaps a writer with anyone under a mixed load', async () => {
    const backend = new MemoryBackend();
    let readers = 0;
    let writers = 0;
    let violations = 0;
    let readerOverlap = 0;
    const work = processes(backend, 8).map(async (locks, index) => {
      const rw = locks.readWriteLock('rw:mixed');
      for (let round = 0; round < 10; round++) {
        if (index % 4 === 0) {
          await rw.write.withLock(async () => {
            writers += 1;
            if (writers > 1 || readers > 0) violations += 1;
            await new Promise((resolve) => setTimeout(resolve, 1));
            writers -= 1;
          });
        } else {
          await rw.read.withLock(async () => {
            readers += 1;
            readerOverlap = Math.max(readerOverlap, readers);
            if (writers > 0) violations += 1;
            await new Promise((resolve) => setTimeout(resolve, 2));
            readers -= 1;
          });
        }
      }
    });
    await Promise.all(work);
    expect(violations).toBe(0);
    expect(readerOverlap).toBeGreaterThan(1);
  });
});
