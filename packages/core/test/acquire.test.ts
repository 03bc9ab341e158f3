import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryBackend } from '../../memory/src/index.js';
import { BackendError, LockManager, LockTimeoutError } from '../src/index.js';
import { RecordingBackend } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('acquire', () => {
  it('waits up to `wait` ms, then throws LockTimeoutError with the key and the time waited', async () => {
    const backend = new MemoryBackend();
    const holder = new LockManager({ backend });
    const waiter = new LockManager({ backend });
    await holder.acquire('busy');
    const attempt = waiter.acquire('busy', { wait: 2_000 }).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(1_999);
    let settled = false;
    void attempt.then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await attempt;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ code: 'LOCK_TIMEOUT', key: 'busy' });
    expect((error as LockTimeoutError).waitedMs).toBeGreaterThanOrEqual(2_000);
  });

  it('waits 10 000 ms by default', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
    const attempt = new LockManager({ backend }).acquire('busy').catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(9_990);
    await vi.advanceTimersByTimeAsync(20);
    const error = (await attempt) as LockTimeoutError;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.waitedMs).toBeGreaterThanOrEqual(10_000);
    expect(error.waitedMs).toBeLessThan(10_100);
  });

  it('rejects at once with the reason when the signal aborts, and leaves nothing behind', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
    const controller = new AbortController();
    const attempt = new LockManager({ backend }).acquire('busy', { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(100);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    await expect(attempt).rejects.toBe(reason);
    expect((await backend.inspect('busy'))?.holders).toHaveLength(1);
  });

  it('rejects an already-aborted signal before asking the backend', async () => {
    const backend = new RecordingBackend();
    const reason = new Error('too late');
    await expect(
      new LockManager({ backend }).acquire('k', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(backend.calls).toEqual([]);
  });

  it('picks up a lease that expires soon after its expiry, not after the longest backoff', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('expiring', { ttl: 300 });
    const waiter = new LockManager({ backend, backoff: { initialMs: 5_000, maxMs: 5_000 } });
    let acquiredAt = 0;
    const attempt = waiter.acquire('expiring').then((lock) => {
      acquiredAt = Date.now();
      return lock;
    });
    const startedAt = Date.now();
    await vi.advanceTimersByTimeAsync(400);
    await attempt;
    expect(acquiredAt - startedAt).toBeLessThanOrEqual(310);
  });

  it('is woken by the backend on release even when polling is off', async () => {
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend }).acquire('wake');
    const waiter = new LockManager({ backend, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    const attempt = waiter.acquire('wake', { wait: 120_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    await holder.release();
    await vi.advanceTimersByTimeAsync(1);
    const lock = await attempt;
    expect(lock.fence).toBeGreaterThan(holder.fence);
  });

  it('serves waiters of one manager in arrival order', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const first = await locks.acquire('fifo');
    const order: number[] = [];
    const waiting = [0, 1, 2, 3, 4].map((index) =>
      locks.acquire('fifo').then(async (lock) => {
        order.push(index);
        await lock.release();
      }),
    );
    await first.release();
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all(waiting);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('surfaces a failing waitForRelease as BackendError', async () => {
    const broken = new RecordingBackend();
    await new LockManager({ backend: broken }).acquire('k', { ttl: 60_000 });
    broken.waitFault = true;
    const attempt = new LockManager({ backend: broken }).acquire('k').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    const error = await attempt;
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).cause).toMatchObject({ message: 'subscriber lost' });
  });
});

describe('tryAcquire', () => {
  it('makes exactly one attempt and resolves null when the lock is held', async () => {
    const backend = new RecordingBackend();
    await new LockManager({ backend: backend.inner }).acquire('held');
    const result = await new LockManager({ backend }).tryAcquire('held');
    expect(result).toBeNull();
    expect(backend.calls).toEqual(['acquire']);
  });

  it('resolves a Lock with a 128-bit random token when free', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const first = await locks.tryAcquire('free');
    const second = await locks.tryAcquire('other');
    expect(first?.token).toMatch(/^[0-9a-f]{32}$/);
    expect(second?.token).toMatch(/^[0-9a-f]{32}$/);
    expect(first?.token).not.toBe(second?.token);
  });
});
