import { hostname } from 'node:os';
import { Lock, LockManager, LockTimeoutError } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { flush, RecordingBackend, watch } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('acquire', () => {
  it('grants a free lock at once with a fence, an expiry and a held signal', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('free', { ttl: 5_000 });
    expect(lock).toBeInstanceOf(Lock);
    expect(lock.key).toBe('free');
    expect(lock.held).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    expect(lock.fence).toBeGreaterThan(0);
    expect(lock.expiresAt).toBe(Date.now() + 5_000);
    const info = await backend.inspection.inspect({ key: 'free' });
    expect(info?.holders).toEqual([
      { token: lock.token, weight: 1, ttlMs: 5_000, owner: `${hostname()}:${process.pid}` },
    ]);
    expect(info?.fence).toBe(lock.fence);
  });

  it.each(['acquire', 'tryAcquire'] as const)(
    "%s counts the lease from before the request was sent, never later than the backend's",
    async (method) => {
      const backend = new RecordingBackend();
      backend.acquireGate = new Promise((resolve) => setTimeout(resolve, 200));
      const sentAt = Date.now();
      const acquiring = new LockManager({ backend })[method]('slow', { ttl: 5_000 });
      await vi.advanceTimersByTimeAsync(200);
      const lock = (await acquiring)!;
      expect(lock.expiresAt).toBe(sentAt + 5_000);
      const backendExpiresAt =
        Date.now() + (await backend.inspection.inspect({ key: 'slow' }))!.holders[0]!.ttlMs;
      expect(lock.expiresAt).toBeLessThan(backendExpiresAt);
    },
  );

  it('gives back a grant whose reply came after its loss point and asks again, never returning a lost lock', async () => {
    const backend = new RecordingBackend();
    backend.acquireGate = new Promise((resolve) => setTimeout(resolve, 950));
    const acquiring = new LockManager({ backend }).acquire('late', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(950);
    // The retry follows at once, after at most the 1 ms floor of a wait.
    await vi.advanceTimersByTimeAsync(1);
    const lock = await acquiring;
    expect(backend.calls.filter((op) => op !== 'waitForRelease')).toEqual([
      'acquire',
      'release',
      'acquire',
    ]);
    expect(lock.held).toBe(true);
    expect(lock.signal.aborted).toBe(false);
    expect(lock.expiresAt).toBe(Date.now() + 1_000);
    expect(
      (await backend.inspection.inspect({ key: 'late' }))?.holders.map((holder) => holder.token),
    ).toEqual([lock.token]);
  });

  it('asks again only once the late grant it gave back is gone, whose release the store got after the request behind it', async () => {
    const backend = new RecordingBackend();
    backend.acquireGate = new Promise((resolve) => setTimeout(resolve, 950));
    backend.releaseDelayMs = 20;
    const acquiring = new LockManager({ backend }).acquire('late', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    const lock = await acquiring;
    // The give-back's release, had the retry not waited for it, would have ended the new lease.
    expect(lock.held).toBe(true);
    expect(
      (await backend.inspection.inspect({ key: 'late' }))?.holders.map((holder) => holder.token),
    ).toEqual([lock.token]);
    const [firstAsk, release, secondAsk] = backend.log.filter(
      (call) => call.op !== 'waitForRelease',
    );
    expect([firstAsk?.op, release?.op, secondAsk?.op]).toEqual(['acquire', 'release', 'acquire']);
    expect(secondAsk!.at - release!.at).toBeGreaterThanOrEqual(20);
  });

  it('lets a caller-chosen token ask again at once after a fair wait timed out, its queue place given back late', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend });
    const holder = await locks.acquire('job', { ttl: 60_000 });
    const token = 'job-42:9f1c2e7a-4b3d-4f6e-8a5b-1c2d3e4f5a6b';
    const waiting = locks.acquire('job', { token, fair: true, wait: 100 });
    const timedOut = expect(waiting).rejects.toBeInstanceOf(LockTimeoutError);
    // Its place is given back as it times out, and that release reaches the store late.
    backend.releaseDelayMs = 20;
    await vi.advanceTimersByTimeAsync(100);
    await timedOut;
    backend.releaseDelayMs = 0;
    await holder.release();
    // The same token asks again at once: had it not waited for the give-back, that would end the
    // lease it is granted now.
    const again = locks.acquire('job', { token, fair: true });
    await vi.advanceTimersByTimeAsync(50);
    const lock = await again;
    expect(
      (await backend.inspection.inspect({ key: 'job' }))?.holders.map((one) => one.token),
    ).toEqual([lock.token]);
  });

  it('tryAcquire resolves null for a grant whose reply came after its loss point, and gives it back', async () => {
    const backend = new RecordingBackend();
    backend.acquireGate = new Promise((resolve) => setTimeout(resolve, 950));
    const attempt = new LockManager({ backend }).tryAcquire('late', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(950);
    expect(await attempt).toBeNull();
    await flush();
    expect(backend.calls).toEqual(['acquire', 'release']);
    expect(await backend.inspection.inspect({ key: 'late' })).toBeNull();
  });

  it('holds for 30 000 ms by default', async () => {
    const backend = new MemoryBackend();
    const lock = await new LockManager({ backend }).acquire('default-ttl');
    expect(lock.expiresAt).toBe(Date.now() + 30_000);
    expect((await backend.inspection.inspect({ key: 'default-ttl' }))?.holders[0]?.ttlMs).toBe(
      30_000,
    );
  });

  it('gives each acquisition a larger fence than the one before', async () => {
    const backend = new MemoryBackend();
    const fences: number[] = [];
    for (let round = 0; round < 5; round++) {
      const locks = new LockManager({ backend });
      const lock = await locks.acquire('fenced');
      fences.push(lock.fence);
      await lock.release();
    }
    expect([...fences].sort((a, b) => a - b)).toEqual(fences);
    expect(new Set(fences).size).toBe(fences.length);
  });

  it.each([
    ['the default 10 000 ms', undefined, 10_000],
    ['`wait: 2000`', 2_000, 2_000],
  ])(
    'waits %s for a held lock, then throws LockTimeoutError with key and waitedMs',
    async (_, wait, waitMs) => {
      const backend = new MemoryBackend();
      await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
      const startedAt = Date.now();
      const attempt = watch(
        new LockManager({ backend }).acquire('busy', wait === undefined ? {} : { wait }),
      );
      await vi.advanceTimersByTimeAsync(waitMs - 1);
      expect(attempt.settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(attempt.settled).toBe(true);
      const error = await attempt.result.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error).toMatchObject({
        code: 'LOCK_TIMEOUT',
        key: 'busy',
        waitedMs: waitMs,
        unanswered: false,
      });
      expect(attempt.at - startedAt).toBe(waitMs);
      expect((error as Error).message).toContain('"busy"');
    },
  );

  it('takes its default wait from the manager', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
    const attempt = watch(
      new LockManager({ backend, defaults: { wait: 300 } }).acquire('busy').catch((e) => e),
    );
    await vi.advanceTimersByTimeAsync(300);
    expect(attempt.settled).toBe(true);
    expect(await attempt.result).toMatchObject({ code: 'LOCK_TIMEOUT', waitedMs: 300 });
  });

  it('with `wait: 0` makes one attempt and times out at once when held', async () => {
    const backend = new RecordingBackend();
    await new LockManager({ backend: backend.inner }).acquire('busy', { ttl: 60_000 });
    const attempt = watch(new LockManager({ backend }).acquire('busy', { wait: 0 }));
    await flush();
    expect(attempt.settled).toBe(true);
    await expect(attempt.result).rejects.toMatchObject({ code: 'LOCK_TIMEOUT', waitedMs: 0 });
    expect(backend.count('acquire')).toBe(1);
    expect(await new LockManager({ backend }).acquire('free', { wait: 0 })).toBeInstanceOf(Lock);
  });

  it('gets the lock when the holder releases before the wait runs out', async () => {
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend }).acquire('handover', { ttl: 60_000 });
    const attempt = new LockManager({ backend }).acquire('handover', { wait: 5_000 });
    await vi.advanceTimersByTimeAsync(4_000);
    await holder.release();
    await vi.advanceTimersByTimeAsync(10);
    const lock = await attempt;
    expect(lock.held).toBe(true);
    expect(lock.fence).toBeGreaterThan(holder.fence);
  });

  it('rejects with the signal reason at once when the signal aborts, leaving nothing behind', async () => {
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
    const controller = new AbortController();
    const attempt = watch(
      new LockManager({ backend }).acquire('busy', { signal: controller.signal }),
    );
    await vi.advanceTimersByTimeAsync(1_234);
    expect(attempt.settled).toBe(false);
    const reason = new Error('user cancelled');
    const abortedAt = Date.now();
    controller.abort(reason);
    await flush();
    expect(attempt.settled).toBe(true);
    expect(attempt.at).toBe(abortedAt);
    await expect(attempt.result).rejects.toBe(reason);
    expect(
      (await backend.inspection.inspect({ key: 'busy' }))?.holders.map((h) => h.token),
    ).toEqual([holder.token]);
  });

  it('rejects with the default AbortError when aborted without a reason', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('busy', { ttl: 60_000 });
    const controller = new AbortController();
    const attempt = new LockManager({ backend })
      .acquire('busy', { signal: controller.signal })
      .catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    expect(await attempt).toBe(controller.signal.reason);
    expect(await attempt).toMatchObject({ name: 'AbortError' });
  });

  it('rejects an already-aborted signal before any backend call', async () => {
    const backend = new RecordingBackend();
    const reason = new Error('too late');
    await expect(
      new LockManager({ backend }).acquire('k', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(backend.calls).toEqual([]);
  });

  it('rejects at once on abort even while a backend request hangs, and gives back a late grant', async () => {
    const backend = new RecordingBackend();
    let reconnect = () => {};
    backend.acquireGate = new Promise((resolve) => {
      reconnect = resolve;
    });
    const controller = new AbortController();
    const attempt = watch(
      new LockManager({ backend }).acquire('stuck', { signal: controller.signal }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(backend.calls).toEqual(['acquire']);
    const reason = new Error('shutting down');
    controller.abort(reason);
    await flush();
    expect(attempt.settled).toBe(true);
    await expect(attempt.result).rejects.toBe(reason);
    // The waiter gives up its queue place at once.
    expect(backend.calls).toEqual(['acquire', 'release']);
    // The request still reaches the server later and is granted there: it must be given back.
    reconnect();
    await flush();
    expect(backend.calls).toEqual(['acquire', 'release', 'release']);
    expect(await backend.inspection.inspect({ key: 'stuck' })).toBeNull();
  });
});

describe('tryAcquire', () => {
  it('makes exactly one backend call and resolves null when the lock is held', async () => {
    const backend = new RecordingBackend();
    const holder = await new LockManager({ backend: backend.inner }).acquire('held');
    const attempt = watch(new LockManager({ backend }).tryAcquire('held'));
    await flush();
    expect(attempt.settled).toBe(true);
    expect(await attempt.result).toBeNull();
    expect(backend.calls).toEqual(['acquire']);
    // The holder was not disturbed.
    expect(
      (await backend.inspection.inspect({ key: 'held' }))?.holders.map((h) => h.token),
    ).toEqual([holder.token]);
  });

  it('makes exactly one backend call and resolves a Lock when the lock is free', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).tryAcquire('free', { ttl: 2_000 });
    expect(lock).toBeInstanceOf(Lock);
    expect(lock?.expiresAt).toBe(Date.now() + 2_000);
    expect(backend.calls).toEqual(['acquire']);
    expect((await backend.inspection.inspect({ key: 'free' }))?.holders[0]?.token).toBe(
      lock?.token,
    );
  });

  it('does not wait for a lease about to expire', async () => {
    const backend = new RecordingBackend();
    await new LockManager({ backend: backend.inner }).acquire('expiring', { ttl: 5 });
    expect(await new LockManager({ backend }).tryAcquire('expiring')).toBeNull();
    await vi.advanceTimersByTimeAsync(100);
    expect(backend.calls).toEqual(['acquire']);
  });

  it('rejects an already-aborted signal before any backend call', async () => {
    const backend = new RecordingBackend();
    const reason = new Error('too late');
    await expect(
      new LockManager({ backend }).tryAcquire('k', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(backend.calls).toEqual([]);
  });
});

describe('tokens', () => {
  it('are 128-bit random hex, distinct per acquisition, and what the backend stores', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const tokens = new Set<string>();
    // More rounds than one refill of the pooled random bytes (256 tokens) holds.
    const rounds = 600;
    for (let round = 0; round < rounds; round++) {
      const lock = await locks.acquire('tokens');
      expect(lock.token).toMatch(/^[0-9a-f]{32}$/);
      expect((await backend.inspection.inspect({ key: 'tokens' }))?.holders[0]?.token).toBe(
        lock.token,
      );
      tokens.add(lock.token);
      await lock.release();
    }
    expect(tokens.size).toBe(rounds);
  });

  it('differ between concurrent holders of one semaphore', async () => {
    const pool = new LockManager({ backend: new MemoryBackend() }).semaphore('pool', { limit: 8 });
    const grants = await Promise.all(Array.from({ length: 8 }, () => pool.acquire()));
    expect(new Set(grants.map((lock) => lock.token)).size).toBe(8);
  });
});
