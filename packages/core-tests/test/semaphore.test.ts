import { Lock, LockManager, LockTimeoutError } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingBackend, watch } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('semaphore', () => {
  it('exposes its key and limit', () => {
    const pool = new LockManager({ backend: new MemoryBackend() }).semaphore('gpu', { limit: 4 });
    expect(pool.key).toBe('gpu');
    expect(pool.limit).toBe(4);
  });

  it('grants up to `limit` permits, then tryAcquire resolves null after one call', async () => {
    const backend = new RecordingBackend();
    const pool = new LockManager({ backend }).semaphore('pool', { limit: 3 });
    const grants = [await pool.acquire(), await pool.tryAcquire(), await pool.acquire()];
    for (const grant of grants) expect(grant).toBeInstanceOf(Lock);
    const before = backend.count('acquire');
    expect(await pool.tryAcquire()).toBeNull();
    expect(backend.count('acquire')).toBe(before + 1);
    const info = await backend.inspection.inspect({ key: 'pool' });
    expect(info?.holders.map((h) => h.token).sort()).toEqual(grants.map((g) => g!.token).sort());
    expect(info?.holders.every((h) => h.weight === 1)).toBe(true);
  });

  it('each grant has its own larger fence', async () => {
    const pool = new LockManager({ backend: new MemoryBackend() }).semaphore('f', { limit: 3 });
    const first = await pool.acquire();
    const second = await pool.acquire();
    expect(second.fence).toBeGreaterThan(first.fence);
  });

  it('counts weights: a grant of weight 2 leaves 1 of 3', async () => {
    const backend = new MemoryBackend();
    const pool = new LockManager({ backend }).semaphore('weighted', { limit: 3 });
    const heavy = await pool.acquire({ weight: 2 });
    expect((await backend.inspection.inspect({ key: 'weighted' }))?.holders[0]?.weight).toBe(2);
    expect(await pool.tryAcquire({ weight: 2 })).toBeNull();
    const light = await pool.tryAcquire({ weight: 1 });
    expect(light).not.toBeNull();
    expect(await pool.tryAcquire()).toBeNull();
    await heavy.release();
    expect(await pool.tryAcquire({ weight: 2 })).not.toBeNull();
  });

  it('accepts a weight equal to the limit: all permits at once', async () => {
    const pool = new LockManager({ backend: new MemoryBackend() }).semaphore('all', { limit: 3 });
    const all = await pool.acquire({ weight: 3 });
    expect(await pool.tryAcquire()).toBeNull();
    await all.release();
    expect(await pool.tryAcquire()).not.toBeNull();
  });

  it('acquire waits for enough permits to be released', async () => {
    const backend = new MemoryBackend();
    const holders = new LockManager({ backend }).semaphore('wait', { limit: 2 });
    const a = await holders.acquire({ ttl: 60_000 });
    const b = await holders.acquire({ ttl: 60_000 });
    const waiter = new LockManager({ backend }).semaphore('wait', { limit: 2 });
    const attempt = watch(waiter.acquire({ weight: 2, wait: 30_000 }));
    await vi.advanceTimersByTimeAsync(1_000);
    await a.release();
    await vi.advanceTimersByTimeAsync(1_000);
    // One permit is not enough for a weight of 2.
    expect(attempt.settled).toBe(false);
    await b.release();
    await vi.advanceTimersByTimeAsync(1);
    expect(attempt.settled).toBe(true);
    expect((await backend.inspection.inspect({ key: 'wait' }))?.holders[0]?.weight).toBe(2);
  });

  it('acquire times out with LockTimeoutError when permits stay taken', async () => {
    const backend = new MemoryBackend();
    const pool = new LockManager({ backend }).semaphore('full', { limit: 1 });
    await pool.acquire({ ttl: 60_000 });
    const attempt = watch(pool.acquire({ wait: 500 }));
    await vi.advanceTimersByTimeAsync(500);
    expect(attempt.settled).toBe(true);
    const error = await attempt.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ key: 'full', waitedMs: 500 });
  });

  it("withPermit holds `weight` permits while fn runs, returns fn's value and gives them back", async () => {
    const backend = new MemoryBackend();
    const pool = new LockManager({ backend }).semaphore('permit', { limit: 3 });
    const value = await pool.withPermit(
      async (lock) => {
        expect(lock.held).toBe(true);
        expect((await backend.inspection.inspect({ key: 'permit' }))?.holders).toEqual([
          expect.objectContaining({ token: lock.token, weight: 2 }),
        ]);
        expect(await pool.tryAcquire({ weight: 2 })).toBeNull();
        return 'rendered';
      },
      { weight: 2 },
    );
    expect(value).toBe('rendered');
    expect(await backend.inspection.inspect({ key: 'permit' })).toBeNull();
  });

  it("withPermit rethrows fn's error unchanged and gives the permits back", async () => {
    const backend = new MemoryBackend();
    const pool = new LockManager({ backend }).semaphore('permit', { limit: 2 });
    const thrown = new Error('render failed');
    await expect(
      pool.withPermit(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(await backend.inspection.inspect({ key: 'permit' })).toBeNull();
  });

  it('never has more than `limit` holders at once under contention', async () => {
    const backend = new MemoryBackend();
    let inside = 0;
    let most = 0;
    const runs = Array.from({ length: 12 }, (_, index) =>
      new LockManager({ backend }).semaphore('busy', { limit: 3 }).withPermit(async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 10 + index));
        inside -= 1;
      }),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(runs);
    expect(most).toBe(3);
  });
});
