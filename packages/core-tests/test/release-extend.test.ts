import { BackendError, LockLostError, LockManager, LockNotHeldError } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingBackend } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('release', () => {
  it('resolves true when it released, and the lock is free for others at once', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k');
    expect(await lock.release()).toBe(true);
    expect(lock.held).toBe(false);
    expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
    expect(await new LockManager({ backend }).tryAcquire('k')).not.toBeNull();
  });

  it('resolves false on a second call, without asking the backend again', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k');
    expect(await lock.release()).toBe(true);
    expect(await lock.release()).toBe(false);
    expect(backend.count('release')).toBe(1);
  });

  it('resolves true for only one of two concurrent calls', async () => {
    const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k');
    expect(await Promise.all([lock.release(), lock.release()])).toEqual([true, false]);
  });

  it('resolves false, without throwing, when the lease had already expired', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await lock.release()).toBe(false);
    expect(lock.held).toBe(false);
  });

  it('resolves false, without throwing or disturbing the new holder, when taken over', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    const next = await new LockManager({ backend }).acquire('k');
    expect(await lock.release()).toBe(false);
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders.map((h) => h.token)).toEqual([
      next.token,
    ]);
    expect(next.held).toBe(true);
  });

  it('resolves false when the backend no longer knows the lease', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 10_000 });
    // Another tool force-released it (for example `deadbolt release --force`).
    await backend.release({ key: 'k', token: lock.token });
    expect(await lock.release()).toBe(false);
  });

  it('throws BackendError, keeping the cause, when the backend cannot be reached', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k');
    backend.releaseFault = true;
    const error = await lock.release().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).cause).toMatchObject({ message: 'connect ECONNREFUSED' });
    expect(lock.held).toBe(false);
  });

  it('stops the loss timer: a released lock never reports a loss', async () => {
    const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k', {
      ttl: 1_000,
    });
    await lock.release();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lock.signal.aborted).toBe(false);
  });
});

describe('extend', () => {
  it('resets the lease to the given ttl from now', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const lock = await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(500);
    await lock.extend(2_000);
    expect(lock.expiresAt).toBe(Date.now() + 2_000);
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders[0]?.ttlMs).toBe(2_000);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(await locks.tryAcquire('k')).toBeNull();
    expect(lock.held).toBe(true);
  });

  it('uses the ttl the lock was acquired with by default', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 4_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    await lock.extend();
    expect(lock.expiresAt).toBe(Date.now() + 4_000);
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders[0]?.ttlMs).toBe(4_000);
  });

  it("counts the new lease from before the request was sent, never later than the backend's", async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    backend.extendDelayMs = 200;
    const sentAt = Date.now();
    const extending = lock.extend(5_000);
    await vi.advanceTimersByTimeAsync(200);
    await extending;
    expect(lock.expiresAt).toBe(sentAt + 5_000);
    const backendExpiresAt =
      Date.now() + (await backend.inspection.inspect({ key: 'k' }))!.holders[0]!.ttlMs;
    expect(lock.expiresAt).toBeLessThan(backendExpiresAt);
  });

  it('keeps the fence', async () => {
    const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k');
    const fence = lock.fence;
    await lock.extend(60_000);
    expect(lock.fence).toBe(fence);
  });

  it('throws LockLostError on a lease that was taken over, and aborts the signal with it', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 1_000 });
    // Force-released, then taken by someone else.
    await backend.release({ key: 'k', token: lock.token });
    const next = await new LockManager({ backend }).acquire('k');
    const error = await lock.extend().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockLostError);
    expect(error).toMatchObject({ code: 'LOCK_LOST', key: 'k' });
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBe(error);
    expect(lock.held).toBe(false);
    // It did not take the lease back from the new holder.
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders.map((h) => h.token)).toEqual([
      next.token,
    ]);
    // Later calls keep saying so.
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
  });

  it('throws LockLostError on a lease that expired', async () => {
    const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k', {
      ttl: 1_000,
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
  });

  it('throws LockNotHeldError after release, without asking the backend', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k');
    await lock.release();
    const error = await lock.extend().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockNotHeldError);
    expect(error).toMatchObject({ code: 'LOCK_NOT_HELD', key: 'k' });
    expect(backend.count('extend')).toBe(0);
  });

  it('throws BackendError when the backend cannot be reached, and the lock stays held', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', { ttl: 10_000 });
    backend.extendFault = 'reject';
    const error = await lock.extend().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).cause).toMatchObject({ message: 'connect ECONNREFUSED' });
    expect(lock.held).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    backend.extendFault = undefined;
    await lock.extend();
    expect(lock.held).toBe(true);
  });
});
