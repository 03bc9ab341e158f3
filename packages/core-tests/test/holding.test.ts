import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import {
  InvalidArgumentError,
  LockLostError,
  LockManager,
  LockSet,
  LockTimeoutError,
  NestedLockError,
} from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingBackend } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('auto-extension under control', () => {
  it('renews every everyMs when told, and stops without releasing on stopExtending()', async () => {
    const backend = new RecordingBackend();
    const lock = await new LockManager({ backend }).acquire('k', {
      ttl: 10_000,
      autoExtend: { everyMs: 1_000 },
    });
    await vi.advanceTimersByTimeAsync(3_500);
    expect(backend.count('extend')).toBe(3);
    expect(lock.extending).toBe(true);
    lock.stopExtending();
    expect(lock.extending).toBe(false);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(backend.count('extend')).toBe(3);
    // Still held, until the lease from the last renewal runs out.
    expect(lock.held).toBe(true);
    expect(lock.expiresAt).toBe(Date.now() - 5_500 + 10_000);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lock.held).toBe(false);
  });

  it('refuses a renewal interval the lease would not survive', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    for (const [autoExtend, says] of [
      [{ everyMs: 900 }, /not less than 90% of the ttl/],
      [{ everyMs: 0 }, /expected a number of milliseconds > 0/],
      [{ every: 5 }, /unknown option/],
      ['yes', /expected true, false or \{ everyMs \}/],
    ] as const) {
      const error = await locks
        .acquire('k', { ttl: 1_000, autoExtend: autoExtend as never })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(says);
    }
  });
});

describe('a token chosen by the caller', () => {
  it('holds the lock under that token: a second acquisition with it is the same holder', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const token = randomUUID();
    const first = await locks.acquire('job', { token });
    expect(first.token).toBe(token);
    // Another worker of the same job, with the same token, is granted again (an idempotency key).
    const again = await locks.acquire('job', { token, wait: 0 });
    expect(again.fence).toBeGreaterThan(first.fence);
    expect(await locks.tryAcquire('job')).toBeNull();
    expect(await again.release()).toBe(true);
  });

  it.each([
    ['a short one', 'job-42'],
    ['a padded counter', 'job-000000000000000000000000000001'],
    ['one with spaces', 'a b c d e f g h i j k l m n o p q r s'],
    ['a number', 12345],
  ])('refuses %s', async (_, token) => {
    const error = await new LockManager({ backend: new MemoryBackend() })
      .acquire('job', { token: token as never })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'options.token' });
  });
});

describe('handles that move between processes', () => {
  it('lets another manager go on holding, extending and releasing a lock from its handle', async () => {
    const backend = new MemoryBackend();
    const scheduler = new LockManager({ backend });
    const worker = new LockManager({ backend });
    const lock = await scheduler.acquire('job:7', { ttl: 5_000 });
    const handle = JSON.parse(JSON.stringify(lock.toHandle()));
    expect(handle).toEqual({
      key: 'job:7',
      token: lock.token,
      fence: lock.fence,
      expiresAt: lock.expiresAt,
      ttlMs: 5_000,
      weight: 1,
      limit: 1,
    });
    // The logged form still leaves the token out.
    expect(JSON.stringify(lock)).not.toContain(lock.token);
    await vi.advanceTimersByTimeAsync(4_000);
    const resumed = await worker.resume(handle, { autoExtend: true });
    expect(resumed.fence).toBe(lock.fence);
    expect(resumed.expiresAt).toBe(Date.now() + 5_000);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(resumed.held).toBe(true);
    expect(await worker.tryAcquire('job:7')).toBeNull();
    expect(await resumed.release()).toBe(true);
    expect(await worker.tryAcquire('job:7')).not.toBeNull();
  });

  it('rejects a handle whose lease is gone with LockLostError, and a malformed one with InvalidArgumentError', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const lock = await locks.acquire('job:8', { ttl: 1_000 });
    const handle = lock.toHandle();
    await lock.release();
    await expect(locks.resume(handle)).rejects.toBeInstanceOf(LockLostError);
    for (const [broken, argument] of [
      [{ ...handle, token: '' }, 'handle.token'],
      [{ ...handle, fence: -1 }, 'handle.fence'],
      [{ ...handle, ttlMs: 0 }, 'handle.ttlMs'],
      [{ ...handle, weight: 2 }, 'handle.weight'],
      [{ ...handle, extra: true }, 'handle.extra'],
      ['a string', 'handle'],
    ] as const) {
      await expect(locks.resume(broken as never)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        argument,
      });
    }
  });
});

describe('acquireAll', () => {
  it('takes every key or none: a timeout gives back the keys it took', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const other = await locks.acquire('b');
    const taking = locks
      .acquireAll(['c', 'b', 'a'], { wait: 500 })
      .catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(500);
    const error = await taking;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as LockTimeoutError).key).toBe('b');
    // 'a' was taken first (keys go in order) and went back.
    expect(await backend.inspection.inspect({ key: 'a' })).toBeNull();
    await other.release();
    const all = await locks.acquireAll(['c', 'b', 'a']);
    expect(all).toBeInstanceOf(LockSet);
    expect(all.keys).toEqual(['a', 'b', 'c']);
    expect(all.held).toBe(true);
    expect(all.fenceOf('b')).toBe(all.locks[1]?.fence);
    expect(await all.release()).toBe(true);
    expect(await backend.inspection.inspect({ key: 'b' })).toBeNull();
  });

  it('signals the set when any of its locks is lost', async () => {
    const backend = new MemoryBackend();
    const all = await new LockManager({ backend }).acquireAll(['x', 'y'], { ttl: 1_000 });
    await backend.release({ key: 'y', token: all.locks[1]?.token as string });
    await expect(all.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(all.signal.aborted).toBe(true);
    expect(all.signal.reason).toBeInstanceOf(LockLostError);
    expect(all.held).toBe(false);
  });

  it('refuses an empty list, a repeated key and a chosen token before any I/O', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend });
    for (const [keys, options, argument] of [
      [[], undefined, 'keys'],
      [['a', 'a'], undefined, 'keys'],
      [['a', ''], undefined, 'keys[1]'],
      [['a'], { token: randomUUID() }, 'options.token'],
    ] as const) {
      await expect(locks.acquireAll(keys as never, options as never)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        argument,
      });
    }
    expect(backend.calls).toEqual([]);
  });
});

describe('a request stuck on a dead connection', () => {
  it.each([
    [2_000, 2_000],
    // `wait: 0` does not wait for others, but a request still gets a second to answer.
    [0, 1_000],
  ])(
    'ends an acquire with wait %i at %i ms, saying so, and gives back a late grant',
    async (wait, endsAt) => {
      const backend = new RecordingBackend();
      let answer: () => void = () => undefined;
      backend.acquireGate = new Promise((resolve) => (answer = resolve));
      const startedAt = Date.now();
      const acquiring = new LockManager({ backend })
        .acquire('stuck', { wait })
        .catch((error: unknown) => [error, Date.now() - startedAt]);
      await vi.advanceTimersByTimeAsync(endsAt);
      const [error, after] = (await acquiring) as [Error, number];
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error.message).toMatch(/did not answer the last request in time/);
      expect(error).toMatchObject({ unanswered: true });
      expect(after).toBe(endsAt);
      // The connection comes back and the request is applied after all: the grant goes back.
      answer();
      await vi.advanceTimersByTimeAsync(0);
      expect(await backend.inner.inspection.inspect({ key: 'stuck' })).toBeNull();
    },
  );
});

describe('nested locks', () => {
  it('rejects at once a withLock or acquire of a key this flow holds through withLock', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    await locks.withLock('k', async () => {
      await expect(locks.withLock('k', () => 'inner')).rejects.toBeInstanceOf(NestedLockError);
      await expect(locks.acquire('k')).rejects.toMatchObject({ code: 'NESTED_LOCK', key: 'k' });
      // Another key is fine, and so is a try, which never waits.
      expect(await locks.withLock('other', () => 'other')).toBe('other');
      expect(await locks.tryAcquire('k')).toBeNull();
    });
    // Out of the outer call, the key is free to take again.
    expect(await locks.withLock('k', () => 'again')).toBe('again');
  });

  it('runs a reentrant withLock under the outer hold, which the outer call releases', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    await locks.withLock('k', async (outer) => {
      const inner = await locks.withLock('k', (lock) => lock, { reentrant: true });
      expect(inner).toBe(outer);
      expect(outer.held).toBe(true);
    });
    expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
  });

  it('does not mistake another flow holding the key for its own', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    let release: () => void = () => undefined;
    const outer = locks.withLock('k', () => new Promise<void>((resolve) => (release = resolve)));
    await vi.advanceTimersByTimeAsync(0);
    // A separate flow waits, as it should, instead of failing.
    const separate = locks.withLock('k', () => 'second', { wait: 10_000 });
    await vi.advanceTimersByTimeAsync(100);
    release();
    await outer;
    expect(await separate).toBe('second');
  });

  it("keeps each manager's holds to itself: another manager's lock on the same key is not nested", async () => {
    const first = new LockManager({ backend: new MemoryBackend() });
    const second = new LockManager({ backend: new MemoryBackend() });
    const result = await first.withLock('k', () =>
      second.withLock('k', () => first.withLock('k', () => 'inner', { reentrant: true })),
    );
    expect(result).toBe('inner');
    await first.withLock('k', async () => {
      await expect(second.withLock('k', () => first.acquire('k'))).rejects.toBeInstanceOf(
        NestedLockError,
      );
    });
  });

  it('tracks the holds of every manager in one async context storage', async () => {
    // Before Node 24 an AsyncLocalStorage, once run, adds work to every promise the process
    // creates until it is disabled: one per manager made the process slower with each manager.
    const run = vi.spyOn(AsyncLocalStorage.prototype, 'run');
    try {
      for (let manager = 0; manager < 5; manager++) {
        const locks = new LockManager({ backend: new MemoryBackend() });
        await locks.withLock('k', () => undefined);
        await locks.withAll(['a', 'b'], () => undefined);
        await locks.semaphore('s', { limit: 2 }).withPermit(() => undefined);
      }
      expect(run).toHaveBeenCalledTimes(15);
      expect(new Set(run.mock.contexts).size).toBe(1);
    } finally {
      run.mockRestore();
    }
  });
});
