import { BackendError, InvalidArgumentError, LockManager } from '@deadbolt/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBackend } from '../src/index.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryBackend', () => {
  it('expires leases by an injected clock', async () => {
    let now = 1_000_000;
    const backend = new MemoryBackend({ clock: () => now });
    const request = { key: 'k', ttlMs: 500, limit: 1, weight: 1 };
    expect((await backend.acquire({ ...request, token: 'a' })).ok).toBe(true);
    now += 499;
    expect(await backend.acquire({ ...request, token: 'b' })).toEqual({ ok: false, retryInMs: 1 });
    now += 1;
    expect((await backend.acquire({ ...request, token: 'b' })).ok).toBe(true);
    expect(await backend.release({ key: 'k', token: 'a' })).toBe(false);
  });

  it('follows vitest fake timers by default', async () => {
    vi.useFakeTimers();
    const locks = new LockManager({ backend: new MemoryBackend() });
    const lock = await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await lock.release()).toBe(false);
    expect(await locks.tryAcquire('k')).not.toBeNull();
  });

  it('close() rejects waiters and every later call with BackendError', async () => {
    const backend = new MemoryBackend();
    const waiting = backend.waitForRelease('k', new AbortController().signal);
    await backend.close();
    await expect(waiting).rejects.toBeInstanceOf(BackendError);
    await expect(
      backend.acquire({ key: 'k', token: 't', ttlMs: 1, limit: 1, weight: 1 }),
    ).rejects.toBeInstanceOf(BackendError);
    await expect(backend.inspect('k')).rejects.toBeInstanceOf(BackendError);
  });

  it.each([
    ['a non-object', 'fast', 'options'],
    ['an unknown option', { clok: () => 0 }, 'options.clok'],
    ['a clock that is not a function', { clock: 5 }, 'options.clock'],
  ])('rejects %s', (_, options, argument) => {
    expect(() => new MemoryBackend(options as never)).toThrow(InvalidArgumentError);
    expect(() => new MemoryBackend(options as never)).toThrow(argument);
  });
});
