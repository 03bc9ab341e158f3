import { getEventListeners } from 'node:events';
import {
  BackendError,
  HANDOFF_LEASE_MS,
  type Lock,
  type LockBackend,
  LockManager,
  LockTimeoutError,
} from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { flush, pollingOnly, RecordingBackend, watch } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Retry delays so long that a waiter only moves when something wakes it. */
const NO_POLLING = { initialMs: 60_000, maxMs: 60_000 };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('wake-ups', () => {
  it("a racing (fair: false) waiter is woken by the backend's waitForRelease when another process releases", async () => {
    const backend = new RecordingBackend();
    const holder = await new LockManager({ backend: backend.inner }).acquire('wake', {
      ttl: 600_000,
    });
    const attempt = watch(
      new LockManager({ backend, backoff: NO_POLLING }).acquire('wake', {
        wait: 120_000,
        fair: false,
      }),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    expect(attempt.settled).toBe(false);
    expect(backend.count('acquire')).toBe(1);
    expect(backend.count('waitForRelease')).toBe(1);
    const releasedAt = Date.now();
    await holder.release();
    await flush();
    expect(attempt.settled).toBe(true);
    expect(attempt.at).toBe(releasedAt);
    const lock = await attempt.result;
    expect(lock.fence).toBeGreaterThan(holder.fence);
    expect(backend.count('acquire')).toBe(2);
  });

  it('hands a fair waiter in another process the lock on release, with no request after it', async () => {
    const backend = new RecordingBackend();
    const holder = await new LockManager({ backend: backend.inner }).acquire('hand', {
      ttl: 600_000,
    });
    const askedAt = Date.now();
    const attempt = watch(
      new LockManager({ backend, backoff: NO_POLLING }).acquire('hand', {
        wait: 120_000,
        ttl: 10_000,
      }),
    );
    // Less than the 500 ms after which a waiter renews its queue place.
    await vi.advanceTimersByTimeAsync(300);
    expect(backend.calls).toEqual(['acquire', 'waitForRelease']);
    const releasedAt = Date.now();
    await holder.release();
    await flush();
    expect(attempt.at).toBe(releasedAt);
    expect(backend.calls).toEqual(['acquire', 'waitForRelease']);
    const lock = await attempt.result;
    expect(lock.fence).toBeGreaterThan(holder.fence);
    // The lease began when the backend handed it over, which the waiter knows as the time of
    // its last request plus the wait the backend reports: never from when the news arrived. It is
    // the short lease a waiter asks to be handed, so a waiter that died while queued would have
    // held up the next one only that long.
    expect(lock.expiresAt).toBe(askedAt + (releasedAt - askedAt) + HANDOFF_LEASE_MS);
    expect(lock.held).toBe(true);
    // A third of the way in, the lock still held, it extends the lease to the TTL asked for.
    await vi.advanceTimersByTimeAsync(HANDOFF_LEASE_MS / 3);
    expect(backend.calls).toEqual(['acquire', 'waitForRelease', 'extend']);
    expect(lock.expiresAt).toBe(Date.now() + 10_000);
    expect((await backend.inner.inspection.inspect({ key: 'hand' }))?.holders[0]?.ttlMs).toBe(
      10_000,
    );
    // Only that once: it was not asked to auto-extend.
    await vi.advanceTimersByTimeAsync(8_000);
    expect(backend.count('extend')).toBe(1);
    expect(lock.held).toBe(true);
  });

  it('does not extend a handed-over lease released before its extension was due', async () => {
    const backend = new RecordingBackend();
    const holder = await new LockManager({ backend: backend.inner }).acquire('short', {
      ttl: 600_000,
    });
    const attempt = new LockManager({ backend, backoff: NO_POLLING }).acquire('short', {
      wait: 120_000,
      ttl: 60_000,
    });
    await vi.advanceTimersByTimeAsync(100);
    await holder.release();
    const lock = await attempt;
    expect(await lock.release()).toBe(true);
    await vi.advanceTimersByTimeAsync(HANDOFF_LEASE_MS);
    expect(backend.count('extend')).toBe(0);
  });

  it('lets a waiter that died while queued hold up the next one for HANDOFF_LEASE_MS at most, whatever its TTL', async () => {
    const memory = new MemoryBackend();
    const holder = await new LockManager({ backend: memory }).acquire('dead', { ttl: 600_000 });
    // The dying waiter's requests reach the backend while it lives; then nothing it sent
    // comes back to it and nothing more leaves, as when its process is killed.
    let alive = true;
    const never = new Promise<never>(() => undefined);
    const whileAlive = <T>(call: () => Promise<T>): Promise<T> =>
      alive ? call().then((value) => (alive ? value : never)) : never;
    const dying: LockBackend = {
      acquire: (request) => whileAlive(() => memory.acquire(request)),
      extend: (request) => whileAlive(() => memory.extend(request)),
      release: (request) => whileAlive(() => memory.release(request)),
      queue: { acquire: (request) => whileAlive(() => memory.queue.acquire(request)) },
      handoff: {
        waitForGrant: (request) => whileAlive(() => memory.handoff.waitForGrant(request)),
      },
    };
    void new LockManager({ backend: dying }).acquire('dead', { ttl: 600_000, wait: 600_000 });
    await vi.advanceTimersByTimeAsync(10);
    const next = watch(new LockManager({ backend: memory }).acquire('dead', { wait: 600_000 }));
    await vi.advanceTimersByTimeAsync(100);
    alive = false;
    const releasedAt = Date.now();
    await holder.release();
    // The dead waiter had renewed its place lately: it is handed the lock, for a short lease.
    const handed = await memory.inspection.inspect({ key: 'dead' });
    expect(handed?.holders[0]?.ttlMs).toBe(HANDOFF_LEASE_MS);
    await vi.advanceTimersByTimeAsync(HANDOFF_LEASE_MS + 1);
    expect(next.settled).toBe(true);
    expect(next.at - releasedAt).toBeLessThanOrEqual(HANDOFF_LEASE_MS + 1);
    expect((await next.result).held).toBe(true);
  });

  it('hands a fair waiter a local release through the backend, without asking again', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend, backoff: NO_POLLING });
    const first = await locks.acquire('local-hand');
    const second = watch(locks.acquire('local-hand', { wait: 120_000 }));
    await flush();
    await first.release();
    await flush();
    expect(second.settled).toBe(true);
    expect(backend.count('acquire')).toBe(2);
    expect((await second.result).fence).toBeGreaterThan(first.fence);
  });

  it("picks up a lease that expires soon after its expiry (retryInMs), not after the backoff's maxMs", async () => {
    const backend = new RecordingBackend();
    const holder = await new LockManager({ backend: backend.inner }).acquire('expiring', {
      ttl: 300,
    });
    const startedAt = Date.now();
    const attempt = watch(
      new LockManager({ backend, backoff: NO_POLLING }).acquire('expiring', { wait: 120_000 }),
    );
    await vi.advanceTimersByTimeAsync(299);
    // Never before the holder's lease ended.
    expect(attempt.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempt.settled).toBe(true);
    expect(attempt.at - startedAt).toBe(300);
    const lock = await attempt.result;
    expect(lock.fence).toBeGreaterThan(holder.fence);
    // One refused attempt, one retry at the hinted time: no spinning.
    expect(backend.count('acquire')).toBe(2);
  });

  it('polls with capped backoff when the backend cannot report releases', async () => {
    const inner = new MemoryBackend();
    const holder = await new LockManager({ backend: inner }).acquire('polled', { ttl: 600_000 });
    const attempt = watch(
      new LockManager({
        backend: pollingOnly(inner),
        backoff: { initialMs: 25, maxMs: 1_000 },
      }).acquire('polled', { wait: 60_000 }),
    );
    await vi.advanceTimersByTimeAsync(20_000);
    expect(attempt.settled).toBe(false);
    const releasedAt = Date.now();
    await holder.release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempt.settled).toBe(true);
    expect(attempt.at - releasedAt).toBeLessThanOrEqual(1_000);
    expect((await attempt.result).held).toBe(true);
  });

  it('wakes a local waiter on a release in the same manager, without polling', async () => {
    const backend = pollingOnly(new MemoryBackend());
    const locks = new LockManager({ backend, backoff: NO_POLLING });
    const holder = await locks.acquire('local', { ttl: 600_000 });
    const attempt = watch(locks.acquire('local', { wait: 120_000 }));
    await vi.advanceTimersByTimeAsync(5_000);
    const releasedAt = Date.now();
    await holder.release();
    await flush();
    expect(attempt.settled).toBe(true);
    expect(attempt.at).toBe(releasedAt);
  });

  it('keeps a local release that lands while a retry is in flight, after a wait the timer ended', async () => {
    const inner = new MemoryBackend();
    let replyGate: Promise<void> | undefined;
    // Polling only, and the acquire reply held back after the request was applied, like a reply
    // still on the wire: the release below lands between the refusal and the waiter hearing it.
    const backend = {
      ...pollingOnly(inner),
      acquire: async (request: Parameters<MemoryBackend['acquire']>[0]) => {
        const result = await inner.acquire(request);
        if (replyGate) await replyGate;
        return result;
      },
    };
    const locks = new LockManager({ backend, backoff: NO_POLLING });
    const holder = await locks.acquire('in-flight', { ttl: 600_000 });
    const attempt = watch(locks.acquire('in-flight', { wait: 300_000 }));
    await flush();
    let openGate!: () => void;
    replyGate = new Promise((resolve) => {
      openGate = resolve;
    });
    // The first wait ends by its timer (nothing released), so the waiter retries; the retry is
    // refused by the server while the holder still holds, and its reply is held back.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(attempt.settled).toBe(false);
    const releasedAt = Date.now();
    await holder.release();
    openGate();
    await flush();
    // Woken by the release it was told of during the retry, not by the next 60 s timer.
    expect(attempt.settled).toBe(true);
    expect(attempt.at).toBe(releasedAt);
    expect((await attempt.result).held).toBe(true);
  });

  it('a racing waiter next in line behind a local grant asks only once that holder releases', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend, backoff: NO_POLLING, defaults: { fair: false } });
    const first = await locks.acquire('behind', { ttl: 600_000 });
    const second = watch(locks.acquire('behind', { wait: 300_000 }));
    const third = watch(locks.acquire('behind', { wait: 300_000 }));
    await flush();
    // The head asks once and is refused; the one behind it waits its turn without asking.
    expect(backend.count('acquire')).toBe(2);
    await first.release();
    await flush();
    expect(second.settled).toBe(true);
    // The third is now first in line, right behind the second's grant: asking would be refused.
    expect(backend.count('acquire')).toBe(3);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(backend.count('acquire')).toBe(3);
    const releasedAt = Date.now();
    await (await second.result).release();
    await flush();
    expect(third.settled).toBe(true);
    expect(third.at).toBe(releasedAt);
    expect(backend.count('acquire')).toBe(4);
  });

  it('a racing waiter behind a local grant that leaves room (a semaphore) asks at once', async () => {
    const backend = new RecordingBackend();
    const pool = new LockManager({ backend, backoff: NO_POLLING }).semaphore('room', {
      limit: 2,
      fair: false,
    });
    const first = await pool.acquire();
    const second = watch(pool.acquire({ wait: 300_000 }));
    const third = watch(pool.acquire({ wait: 300_000 }));
    await flush();
    // The second fits next to the first; the third, promoted behind that grant, asks and is refused.
    expect(second.settled).toBe(true);
    expect(backend.count('acquire')).toBe(3);
    await first.release();
    await flush();
    expect(third.settled).toBe(true);
    expect((await third.result).held).toBe(true);
  });

  it('surfaces a failing waitForRelease as BackendError with the cause', async () => {
    const backend = new RecordingBackend();
    await new LockManager({ backend: backend.inner }).acquire('k', { ttl: 60_000 });
    backend.waitFault = true;
    const attempt = watch(new LockManager({ backend }).acquire('k'));
    await flush();
    expect(attempt.settled).toBe(true);
    const error = await attempt.result.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect(error).toMatchObject({ code: 'BACKEND' });
    expect((error as BackendError).cause).toMatchObject({ message: 'subscriber lost' });
    expect((error as Error).message).toContain('subscriber lost');
  });
});

describe('one signal shared by many waiters', () => {
  it('adds a single abort listener however many waiters share it, and aborts them all', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const holder = await locks.acquire('shared-signal', { ttl: 600_000 });
    const shutdown = new AbortController();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const waiters = Array.from({ length: 50 }, () =>
        watch(locks.acquire('shared-signal', { signal: shutdown.signal, wait: 120_000 })),
      );
      await vi.advanceTimersByTimeAsync(1_000);
      expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
      const reason = new Error('shutting down');
      shutdown.abort(reason);
      await flush();
      for (const waiter of waiters) await expect(waiter.result).rejects.toBe(reason);
      // Node emits warnings on the next tick.
      await new Promise((resolve) => process.nextTick(resolve));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      await holder.release();
    }
  });
});

describe('in-process queue', () => {
  it('serves the waiters of one manager in arrival order', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const first = await locks.acquire('fifo');
    const order: number[] = [];
    const waiting = [0, 1, 2, 3, 4, 5, 6, 7].map((index) =>
      locks.acquire('fifo').then(async (lock) => {
        order.push(index);
        await sleep(5);
        await lock.release();
      }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(order).toEqual([]);
    await first.release();
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(waiting);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a worker that releases and asks again goes behind those already waiting', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const order: number[] = [];
    const workers = [0, 1, 2].map(async (worker) => {
      for (let round = 0; round < 3; round++) {
        const lock = await locks.acquire('turns');
        order.push(worker);
        await sleep(10);
        await lock.release();
      }
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(workers);
    expect(order).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
  });

  it('counts the time spent behind local waiters against `wait`', async () => {
    const backend = new MemoryBackend();
    await new LockManager({ backend }).acquire('queue', { ttl: 600_000 });
    const locks = new LockManager({ backend });
    const patient = watch(locks.acquire('queue', { wait: 60_000 }));
    const hurried = watch(locks.acquire('queue', { wait: 500 }));
    await vi.advanceTimersByTimeAsync(500);
    expect(hurried.settled).toBe(true);
    await expect(hurried.result).rejects.toMatchObject({ code: 'LOCK_TIMEOUT', waitedMs: 500 });
    expect(await hurried.result.catch((e: unknown) => e)).toBeInstanceOf(LockTimeoutError);
    expect(patient.settled).toBe(false);
    patient.result.catch(() => undefined);
  });

  it('a waiter queued behind another rejects at once on abort, and leaves its place', async () => {
    const locks = new LockManager({ backend: new MemoryBackend(), backoff: NO_POLLING });
    const holder = await locks.acquire('abort-queue', { ttl: 600_000 });
    const first = watch(locks.acquire('abort-queue', { wait: 120_000 }));
    const controller = new AbortController();
    const quitter = watch(locks.acquire('abort-queue', { signal: controller.signal }));
    const last = watch(locks.acquire('abort-queue', { wait: 120_000 }));
    await vi.advanceTimersByTimeAsync(1_000);
    const abortedAt = Date.now();
    controller.abort(new Error('gave up'));
    await flush();
    expect(quitter.settled).toBe(true);
    expect(quitter.at).toBe(abortedAt);
    await expect(quitter.result).rejects.toThrow('gave up');
    expect(first.settled).toBe(false);
    await holder.release();
    await flush();
    expect(first.settled).toBe(true);
    expect(last.settled).toBe(false);
    const releasedAt = Date.now();
    await (await first.result).release();
    await flush();
    expect(last.settled).toBe(true);
    expect(last.at).toBe(releasedAt);
    expect((await last.result).held).toBe(true);
  });

  it('a waiter that times out leaves its place for the next one', async () => {
    const backend = new MemoryBackend();
    const other = await new LockManager({ backend }).acquire('timeout-queue', { ttl: 600_000 });
    const locks = new LockManager({ backend });
    const first = watch(locks.acquire('timeout-queue', { wait: 100 }));
    const second = watch(locks.acquire('timeout-queue', { wait: 60_000 }));
    await vi.advanceTimersByTimeAsync(200);
    await expect(first.result).rejects.toBeInstanceOf(LockTimeoutError);
    await other.release();
    await vi.advanceTimersByTimeAsync(1);
    expect(second.settled).toBe(true);
    const lock: Lock = await second.result;
    expect(lock.held).toBe(true);
  });
});
