import { type Lock, type LockInfo, LockLostError, LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingBackend } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('auto-extension', () => {
  it('keeps the lease for many TTLs: still held, same fence, the backend shows the holder', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('renewed', {
      ttl: 1_000,
      autoExtend: true,
    });
    const fence = lock.fence;
    const other = new LockManager({ backend: backend.inner });
    for (let step = 0; step < 100; step++) {
      await vi.advanceTimersByTimeAsync(100);
      // Renewed well before expiry: never less than half the TTL left on the backend's clock.
      const holder = (await backend.inspection.inspect({ key: 'renewed' }))?.holders[0];
      expect(holder?.token).toBe(lock.token);
      expect(holder?.ttlMs).toBeGreaterThanOrEqual(500);
      expect(await other.tryAcquire('renewed')).toBeNull();
    }
    expect(lock.held).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    expect(lock.fence).toBe(fence);
    expect(lock.expiresAt).toBeGreaterThan(Date.now());
    expect(backend.count('extend')).toBeGreaterThanOrEqual(10_000 / 500);
    expect(await lock.release()).toBe(true);
  });

  it('renews with the TTL the lock was acquired with', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 9_000, autoExtend: true });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(backend.count('extend')).toBeGreaterThan(0);
    const lastRenewal = backend.log.filter((call) => call.op === 'extend').at(-1)!.at;
    expect(lock.expiresAt).toBe(lastRenewal + 9_000);
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders[0]?.ttlMs).toBe(
      lastRenewal + 9_000 - Date.now(),
    );
  });

  it('is on for every acquire when the manager defaults say so', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend, defaults: { autoExtend: true } });
    const lock = await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lock.held).toBe(true);
    expect(backend.count('extend')).toBeGreaterThan(0);
  });

  it('is off by default for acquire: no renewals, and the signal aborts before the lease ends', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    let abortedAt = Number.NaN;
    lock.signal.addEventListener('abort', () => {
      abortedAt = Date.now();
    });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(backend.count('extend')).toBe(0);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect(abortedAt).toBeLessThan(lock.expiresAt);
  });

  it('a signal first read after the loss is already aborted, with the loss as its reason', async () => {
    const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k', {
      ttl: 1_000,
    });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(lock.held).toBe(false);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect(lock.signal.reason).toMatchObject({ code: 'LOCK_LOST', key: 'k' });
    await expect(lock.extend()).rejects.toBe(lock.signal.reason);
  });

  it.each([
    ['lock.held', (lock: Lock) => expect(lock.held).toBe(false)],
    ['lock.signal', (lock: Lock) => expect(lock.signal.aborted).toBe(true)],
    ['lock.extend()', (lock: Lock) => expect(lock.extend()).rejects.toBeInstanceOf(LockLostError)],
    ['lock.release()', async (lock: Lock) => expect(await lock.release()).toBe(false)],
  ])(
    '%s is judged by the clock: the loss shows once the loss point passed, even before its timer ran',
    async (_, observe) => {
      // As on a busy machine or after a SIGSTOP: the clock moves on while no timer runs, and code
      // woken by I/O or by another overdue timer may run before the lock's loss timer.
      const backend = new MemoryBackend();
      const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
      // A signal the holder kept from the start, as one handed to its I/O.
      const kept = lock.signal;
      let heard: unknown;
      kept.addEventListener('abort', () => {
        heard = kept.reason;
      });
      // A tenth of the TTL before the lease ends.
      const lossAt = lock.expiresAt - 100;
      vi.setSystemTime(lossAt - 1);
      expect(lock.held).toBe(true);
      expect(lock.signal.aborted).toBe(false);
      vi.setSystemTime(lossAt);
      await observe(lock);
      // Whichever was read, the holder's listeners heard of the loss then, and the other readings
      // agree.
      expect(heard).toBeInstanceOf(LockLostError);
      expect(lock.signal).toBe(kept);
      expect(lock.held).toBe(false);
      expect(await lock.release()).toBe(false);
      // Giving back a lost lease still frees the key, so nobody waits for it to run out.
      expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
    },
  );

  it.each([
    ['extend rejects', 'reject'],
    ['extend never answers', 'hang'],
    ['extend answers false (the server lost the lease)', 'lost'],
  ] as const)(
    'aborts lock.signal with LockLostError before the lease can expire when %s',
    async (_, fault) => {
      const backend = new RecordingBackend();
      const lock = await new LockManager({ backend }).acquire('k', {
        ttl: 1_000,
        autoExtend: true,
      });
      const expiresAt = lock.expiresAt;
      backend.extendFault = fault;
      let abortedAt = Number.NaN;
      let backendAtAbort: Promise<LockInfo | null> | undefined;
      lock.signal.addEventListener('abort', () => {
        abortedAt = Date.now();
        // MemoryBackend reads its clock when called, so this is the state at the abort.
        backendAtAbort = backend.inner.inspection.inspect({ key: 'k' });
      });
      const other = new LockManager({ backend: backend.inner });
      let takenAt = Number.NaN;
      // Step through the lease a millisecond at a time: nobody else may get the lock before the
      // holder was told to stop.
      for (let elapsed = 0; elapsed < 1_500 && Number.isNaN(takenAt); elapsed++) {
        await vi.advanceTimersByTimeAsync(1);
        const taken = await other.tryAcquire('k');
        if (taken) {
          takenAt = Date.now();
          expect(lock.signal.aborted).toBe(true);
        }
      }
      expect(abortedAt).toBeLessThan(expiresAt);
      expect(takenAt).toBeGreaterThanOrEqual(abortedAt);
      expect(lock.signal.reason).toBeInstanceOf(LockLostError);
      expect(lock.signal.reason).toMatchObject({ code: 'LOCK_LOST', key: 'k' });
      expect(lock.held).toBe(false);
      if (fault !== 'lost') {
        // The lease was still ours when the holder was told to stop: time left to wind down.
        expect((await backendAtAbort)?.holders.map((h) => h.token)).toEqual([lock.token]);
      }
    },
  );

  it.each([
    ['renewals kept failing', 'reject'],
    ['a renewal found it gone', 'lost'],
  ] as const)('stops renewing once the lease is lost (%s)', async (_, fault) => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', {
      ttl: 1_000,
      autoExtend: true,
    });
    backend.extendFault = fault;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lock.signal.aborted).toBe(true);
    const renewals = backend.count('extend');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(backend.count('extend')).toBe(renewals);
  });

  it('rides out a brief backend failure: retries soon and keeps the lock', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', {
      ttl: 1_000,
      autoExtend: true,
    });
    backend.extendFault = 'reject';
    await vi.advanceTimersByTimeAsync(400);
    const failed = backend.count('extend');
    expect(failed).toBeGreaterThan(0);
    backend.extendFault = undefined;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lock.held).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    expect(backend.count('extend')).toBeGreaterThan(failed);
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders[0]?.token).toBe(lock.token);
  });

  it('stops renewing on release', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', {
      ttl: 1_000,
      autoExtend: true,
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await lock.release();
    const renewals = backend.count('extend');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(backend.count('extend')).toBe(renewals);
    expect(lock.signal.aborted).toBe(false);
  });

  it('a renewal that finds the lease gone aborts the signal at once', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', {
      ttl: 3_000,
      autoExtend: true,
    });
    await backend.release({ key: 'k', token: lock.token });
    await vi.advanceTimersByTimeAsync(1_001);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
  });
});
