import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryBackend } from '../../memory/src/index.js';
import { BackendError, LockLostError, LockManager, LockNotHeldError } from '../src/index.js';
import { RecordingBackend } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('release', () => {
  it('resolves true when it released, then false on a second call', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const lock = await locks.acquire('k');
    expect(await lock.release()).toBe(true);
    expect(lock.held).toBe(false);
    expect(await lock.release()).toBe(false);
  });

  it('resolves false, without throwing, when the lease had expired and was taken over', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    const next = await new LockManager({ backend }).acquire('k');
    expect(await lock.release()).toBe(false);
    // The new holder was not disturbed.
    expect((await backend.inspect('k'))?.holders[0]?.token).toBe(next.token);
  });

  it('throws BackendError when the backend cannot be reached', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k');
    backend.releaseFault = true;
    const error = await lock.release().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).cause).toBeInstanceOf(Error);
  });

  it('releases at the end of an `await using` block', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    {
      await using lock = await locks.acquire('scoped');
      expect(lock.held).toBe(true);
    }
    expect(await backend.inspect('scoped')).toBeNull();
  });
});

describe('extend', () => {
  it('resets the lease', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const lock = await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(500);
    await lock.extend(2_000);
    expect(lock.expiresAt).toBe(Date.now() + 2_000);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(await locks.tryAcquire('k')).toBeNull();
  });

  it('throws LockLostError on a lost lease and aborts the signal', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    // Another holder takes over after a forced expiry by the backend's clock.
    await backend.release({ key: 'k', token: lock.token });
    await new LockManager({ backend }).acquire('k');
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
  });

  it('throws LockNotHeldError after release', async () => {
    const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k');
    await lock.release();
    await expect(lock.extend()).rejects.toBeInstanceOf(LockNotHeldError);
  });
});

describe('auto-extension', () => {
  it('renews the lease well before expiry, for as long as the lock is held', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const lock = await locks.acquire('renewed', { ttl: 1_000, autoExtend: true });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lock.held).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    const info = await backend.inspect('renewed');
    expect(info?.holders[0]?.token).toBe(lock.token);
    expect(info?.holders[0]?.ttlMs).toBeGreaterThan(500);
    expect(await new LockManager({ backend }).tryAcquire('renewed')).toBeNull();
    await lock.release();
  });

  it.each(['reject', 'hang'] as const)(
    'aborts lock.signal before the lease can expire when renewals %s',
    async (fault) => {
      const backend = new RecordingBackend();
      const lock = await new LockManager({ backend }).acquire('k', {
        ttl: 1_000,
        autoExtend: true,
      });
      backend.extendFault = fault;
      let abortedAt = Number.NaN;
      lock.signal.addEventListener('abort', () => {
        abortedAt = Date.now();
      });
      const other = new LockManager({ backend: backend.inner });
      // Step through the lease: nobody else can take it before the holder was told to stop.
      for (let elapsed = 0; elapsed < 1_200; elapsed += 10) {
        await vi.advanceTimersByTimeAsync(10);
        const taken = await other.tryAcquire('k');
        if (taken) {
          expect(lock.signal.aborted).toBe(true);
          await taken.release();
          break;
        }
      }
      expect(abortedAt).toBeLessThan(lock.expiresAt);
      expect(lock.signal.reason).toBeInstanceOf(LockLostError);
      expect(lock.held).toBe(false);
    },
  );

  it('aborts at once when a renewal finds the lease gone', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 3_000, autoExtend: true });
    await backend.release({ key: 'k', token: lock.token });
    await vi.advanceTimersByTimeAsync(1_001);
    expect(lock.signal.aborted).toBe(true);
  });
});

describe('withLock', () => {
  it('returns what fn returns and releases', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const value = await locks.withLock('k', async (lock) => {
      expect(lock.held).toBe(true);
      return 42;
    });
    expect(value).toBe(42);
    expect(await backend.inspect('k')).toBeNull();
  });

  it("rethrows fn's error unchanged and still releases", async () => {
    const backend = new MemoryBackend();
    const thrown = new TypeError('boom');
    await expect(
      new LockManager({ backend }).withLock('k', () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(await backend.inspect('k')).toBeNull();
  });

  it("never lets a failed release hide fn's outcome", async () => {
    const backend = new RecordingBackend();
    backend.releaseFault = true;
    const locks = new LockManager({ backend });
    expect(await locks.withLock('k', () => 'done')).toBe('done');
    const thrown = new Error('fn failed');
    await expect(
      locks.withLock('k2', () => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
  });

  it('extends automatically while fn runs', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const running = locks.withLock(
      'long',
      async (lock) => {
        await vi.advanceTimersByTimeAsync(5_000);
        return lock.signal.aborted;
      },
      { ttl: 1_000 },
    );
    expect(await running).toBe(false);
  });
});
