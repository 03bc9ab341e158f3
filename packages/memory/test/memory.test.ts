import { BackendError, InvalidArgumentError, LockManager } from '@deadbolt/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBackend } from '../src/index.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A backend on a clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  const clock = { now: start };
  return { clock, backend: new MemoryBackend({ clock: () => clock.now }) };
}

const mutex = { limit: 1, weight: 1 };

describe('MemoryBackend with an injected clock', () => {
  it('expires a lease exactly at its TTL and hints the time left to waiters', async () => {
    const { clock, backend } = manualClock();
    expect((await backend.acquire({ key: 'k', token: 'a', ttlMs: 500, ...mutex })).ok).toBe(true);
    clock.now += 499;
    expect(await backend.acquire({ key: 'k', token: 'b', ttlMs: 500, ...mutex })).toEqual({
      ok: false,
      retryInMs: 1,
    });
    clock.now += 1;
    expect((await backend.acquire({ key: 'k', token: 'b', ttlMs: 500, ...mutex })).ok).toBe(true);
    expect(await backend.release({ key: 'k', token: 'a' })).toBe(false);
    expect(await backend.extend({ key: 'k', token: 'a', ttlMs: 500 })).toBe(false);
  });

  it('extends from the clock of the extend call, and inspect counts down by it', async () => {
    const { clock, backend } = manualClock();
    await backend.acquire({ key: 'k', token: 'a', ttlMs: 100, ...mutex });
    clock.now += 90;
    expect(await backend.extend({ key: 'k', token: 'a', ttlMs: 100 })).toBe(true);
    clock.now += 60;
    // 150 ms after the grant, yet held: the lease now ends at 90 + 100.
    expect((await backend.inspection.inspect({ key: 'k' }))?.holders).toEqual([
      { token: 'a', weight: 1, ttlMs: 40 },
    ]);
    clock.now += 40;
    expect(await backend.inspection.inspect({ key: 'k' })).toBeNull();
  });

  it('takes fences from the clock in microseconds, and never lets them go back with it', async () => {
    const { clock, backend } = manualClock();
    const grant = async (token: string) => {
      const reply = await backend.acquire({ key: 'k', token, ttlMs: 10, ...mutex });
      if (!reply.ok) throw new Error('expected a grant');
      await backend.release({ key: 'k', token });
      return reply.fence;
    };
    const first = await grant('a');
    expect(first).toBe(1_000_000 * 1000);
    // Same millisecond: one more, not the same.
    expect(await grant('b')).toBe(first + 1);
    clock.now -= 60_000;
    expect(await grant('c')).toBe(first + 2);
  });

  it('drops a queue place whose holder stopped renewing it, when its time runs out', async () => {
    const { clock, backend } = manualClock();
    const request = { key: 'k', ttlMs: 10_000, ...mutex };
    await backend.acquire({ ...request, token: 'holder' });
    await backend.queue.acquire({ ...request, token: 'queued', placeTtlMs: 200 });
    await backend.release({ key: 'k', token: 'holder' });
    // 'queued' is first in line: an unqueued request must wait behind it.
    expect((await backend.acquire({ ...request, token: 'late' })).ok).toBe(false);
    clock.now += 200;
    expect((await backend.acquire({ ...request, token: 'late' })).ok).toBe(true);
    expect((await backend.inspection.inspect({ key: 'k' }))?.queued).toBe(0);
  });

  it('follows vitest fake timers by default', async () => {
    vi.useFakeTimers();
    const locks = new LockManager({ backend: new MemoryBackend() });
    const lock = await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await lock.release()).toBe(false);
    expect(await locks.tryAcquire('k')).not.toBeNull();
  });
});

describe('MemoryBackend fences after it forgot a key', () => {
  /** Ways the clock can stand still, so that only the backend's memory keeps fences increasing. */
  const frozenClocks: [string, () => MemoryBackend][] = [
    ['an injected clock that stands still', () => new MemoryBackend({ clock: () => 1_000 })],
    [
      'vitest fake timers freezing Date.now',
      () => {
        vi.useFakeTimers({ toFake: ['Date'] });
        return new MemoryBackend();
      },
    ],
  ];

  /** Acquires and releases `key` (so the backend may forget it) and returns the fence. */
  async function fenceOfOneGrant(backend: MemoryBackend, key: string, token: string) {
    const reply = await backend.acquire({ key, token, ttlMs: 10_000, ...mutex });
    if (!reply.ok) throw new Error('expected a grant');
    expect(await backend.release({ key, token })).toBe(true);
    return reply.fence;
  }

  it.each(frozenClocks)('keeps them increasing with %s', async (_, create) => {
    const backend = create();
    const fences: number[] = [];
    for (let round = 0; round < 3; round++) {
      fences.push(await fenceOfOneGrant(backend, 'k', `a${round}`));
      // Other keys come and go in between.
      await fenceOfOneGrant(backend, `other:${round}`, 'b');
    }
    expect(fences[1]).toBeGreaterThan(fences[0]!);
    expect(fences[2]).toBeGreaterThan(fences[1]!);
  });

  it.each(frozenClocks)('keeps a fence advanced on a free key, with %s', async (_, create) => {
    const backend = create();
    const first = await fenceOfOneGrant(backend, 'k', 'a');
    // As quorum() writes back a fence granted elsewhere: nobody holds the key here.
    const elsewhere = first + 1_000_000_000;
    await backend.fences.advance({ key: 'k', fence: elsewhere });
    await fenceOfOneGrant(backend, 'busy', 'b');
    expect(await fenceOfOneGrant(backend, 'k', 'c')).toBeGreaterThan(elsewhere);
  });
});

describe('MemoryBackend.close()', () => {
  it('rejects current waiters with BackendError', async () => {
    const backend = new MemoryBackend();
    await backend.acquire({ key: 'k', token: 'a', ttlMs: 10_000, ...mutex });
    const waiting = [
      backend.wakeUps.waitForRelease({ key: 'k', signal: new AbortController().signal }),
      backend.wakeUps.waitForRelease({ key: 'other', signal: new AbortController().signal }),
    ];
    await backend.close();
    for (const waiter of waiting) await expect(waiter).rejects.toBeInstanceOf(BackendError);
  });

  it('rejects a waiting LockManager.acquire with BackendError instead of letting it time out', async () => {
    const backend = new MemoryBackend();
    const [holder, waiter] = [new LockManager({ backend }), new LockManager({ backend })];
    await holder.acquire('k');
    const waiting = waiter.acquire('k', { wait: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await backend.close();
    await expect(waiting).rejects.toBeInstanceOf(BackendError);
  });

  it.each([
    ['acquire', (b: MemoryBackend) => b.acquire({ key: 'k', token: 't', ttlMs: 1, ...mutex })],
    ['extend', (b: MemoryBackend) => b.extend({ key: 'k', token: 't', ttlMs: 1 })],
    ['release', (b: MemoryBackend) => b.release({ key: 'k', token: 't' })],
    ['fences.advance', (b: MemoryBackend) => b.fences.advance({ key: 'k', fence: 1 })],
    [
      'wakeUps.waitForRelease',
      (b: MemoryBackend) =>
        b.wakeUps.waitForRelease({ key: 'k', signal: new AbortController().signal }),
    ],
    ['inspection.inspect', (b: MemoryBackend) => b.inspection.inspect({ key: 'k' })],
  ])('makes a later %s reject with BackendError', async (_, call) => {
    const backend = new MemoryBackend();
    await backend.close();
    const error = await call(backend).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(
      /^\[deadbolt\] \[memory\] the backend is closed/,
    );
  });

  it('can be called twice', async () => {
    const backend = new MemoryBackend();
    await backend.close();
    await expect(backend.close()).resolves.toBeUndefined();
  });
});

describe('MemoryBackend options', () => {
  it.each([
    ['null', null, 'options'],
    ['a non-object', 'fast', 'options'],
    ['an unknown option', { clok: () => 0 }, 'options.clok'],
    ['a clock that is not a function', { clock: 5 }, 'options.clock'],
  ])('rejects %s with InvalidArgumentError naming it', (_, options, argument) => {
    let caught: unknown;
    try {
      new MemoryBackend(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect(caught).toMatchObject({ argument });
  });

  it('accepts no options, an empty object and a clock', () => {
    expect(new MemoryBackend()).toBeInstanceOf(MemoryBackend);
    expect(new MemoryBackend({})).toBeInstanceOf(MemoryBackend);
    expect(new MemoryBackend({ clock: () => 0 })).toBeInstanceOf(MemoryBackend);
  });
});
