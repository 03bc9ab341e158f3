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

describe('withLock', () => {
  it("runs fn holding the lock, returns fn's value and releases", async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    let seen: Lock | undefined;
    const value = await locks.withLock('k', async (lock) => {
      seen = lock;
      expect(lock).toBeInstanceOf(Lock);
      expect(lock.key).toBe('k');
      expect(lock.held).toBe(true);
      expect((await backend.inspection.inspect({ key: 'k' }))?.holders[0]?.token).toBe(lock.token);
      return { answer: 42 };
    });
    expect(value).toEqual({ answer: 42 });
    expect(seen?.held).toBe(false);
    expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
  });

  it('returns the value of a synchronous fn', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    expect(await locks.withLock('k', () => 'sync')).toBe('sync');
  });

  it.each([
    ['an Error', new TypeError('boom')],
    ['a non-Error value', 'plain string'],
    ['undefined', undefined],
  ])("rethrows fn's error unchanged (%s) and still releases", async (_, thrown) => {
    const backend = new MemoryBackend();
    const failure = await new LockManager({ backend })
      .withLock('k', async () => {
        throw thrown;
      })
      .then(
        () => ({ rejected: false, reason: null as unknown }),
        (reason: unknown) => ({ rejected: true, reason }),
      );
    expect(failure.rejected).toBe(true);
    expect(failure.reason).toBe(thrown);
    expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
  });

  it('rethrows a synchronous throw from fn unchanged and still releases', async () => {
    const backend = new MemoryBackend();
    const thrown = new RangeError('sync boom');
    await expect(
      new LockManager({ backend }).withLock('k', () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
  });

  it("a failing release does not hide fn's value", async () => {
    const backend = new RecordingBackend();
    backend.releaseFault = true;
    const locks = new LockManager({ backend });
    expect(await locks.withLock('k', () => 'done')).toBe('done');
    expect(backend.count('release')).toBe(1);
  });

  it("a failing release does not hide fn's error", async () => {
    const backend = new RecordingBackend();
    backend.releaseFault = true;
    const thrown = new Error('fn failed');
    await expect(
      new LockManager({ backend }).withLock('k', () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(backend.count('release')).toBe(1);
  });

  it('extends automatically while fn runs', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend });
    const running = locks.withLock(
      'long',
      async (lock) => {
        await new Promise((resolve) => setTimeout(resolve, 10_000));
        return { aborted: lock.signal.aborted, held: lock.held };
      },
      { ttl: 1_000 },
    );
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await new LockManager({ backend: backend.inner }).tryAcquire('long')).toBeNull();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await running).toEqual({ aborted: false, held: true });
    expect(backend.count('extend')).toBeGreaterThan(0);
    expect(await backend.inspection.inspect({ key: 'long' })).toBeNull();
  });

  it('does not extend when told `autoExtend: false`', async () => {
    const backend = new RecordingBackend();
    const running = new LockManager({ backend }).withLock(
      'k',
      (lock) => new Promise((resolve) => setTimeout(() => resolve(lock.signal.aborted), 2_000)),
      { ttl: 1_000, autoExtend: false },
    );
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await running).toBe(true);
    expect(backend.count('extend')).toBe(0);
  });

  it('waits like acquire, and never runs fn when the wait runs out', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
    const fn = vi.fn();
    const running = watch(new LockManager({ backend }).withLock('busy', fn, { wait: 1_000 }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(running.settled).toBe(true);
    await expect(running.result).rejects.toBeInstanceOf(LockTimeoutError);
    expect(fn).not.toHaveBeenCalled();
  });

  it('runs the critical sections of one key one at a time', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    let inside = 0;
    let most = 0;
    const runs = Array.from({ length: 5 }, () =>
      locks.withLock('serial', async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 50));
        inside -= 1;
      }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(runs);
    expect(most).toBe(1);
  });
});

describe('await using', () => {
  it('releases at the end of the block', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    let inBlock: Lock | undefined;
    {
      await using lock = await locks.acquire('scoped');
      inBlock = lock;
      expect((await backend.inspection.inspect({ key: 'scoped' }))?.holders[0]?.token).toBe(
        lock.token,
      );
    }
    expect(inBlock.held).toBe(false);
    expect(await backend.inspection.inspect({ key: 'scoped' })).toBeNull();
  });

  it('releases when the block throws, and the error passes through', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const thrown = new Error('inside the block');
    const run = async () => {
      await using _lock = await locks.acquire('scoped');
      throw thrown;
    };
    await expect(run()).rejects.toBe(thrown);
    expect(await backend.inspection.inspect({ key: 'scoped' })).toBeNull();
  });

  it('does not throw at the end of the block when the lease already expired', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const run = async () => {
      await using lock = await locks.acquire('scoped', { ttl: 1_000 });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      return lock.held;
    };
    const result = run();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await result).toBe(false);
  });
});
