import { execFileSync } from 'node:child_process';
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import {
  type AcquireTraceContext,
  BackendError,
  type LockEventName,
  type LockEvents,
  LockLostError,
  LockManager,
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

/** Every event `locks` publishes, in order, as `[name, event]`. */
function record(locks: LockManager): [LockEventName, LockEvents[LockEventName]][] {
  const seen: [LockEventName, LockEvents[LockEventName]][] = [];
  for (const name of [
    'acquired',
    'released',
    'extended',
    'extend-failed',
    'lost',
    'timed-out',
    'release-failed',
  ] as const) {
    locks.on(name, (event) => seen.push([name, event]));
  }
  return seen;
}

describe('lock events', () => {
  it('tells of a grant (wait, fence, no handoff) and of its release (time held), naming the key and owner', async () => {
    const locks = new LockManager({ backend: new MemoryBackend(), owner: 'web-1' });
    const seen = record(locks);
    const lock = await locks.acquire('invoice', { ttl: 5_000 });
    await vi.advanceTimersByTimeAsync(1_234);
    await lock.release();
    expect(seen).toEqual([
      [
        'acquired',
        {
          key: 'invoice',
          owner: 'web-1',
          id: expect.any(Number),
          weight: 1,
          limit: 1,
          fence: lock.fence,
          waitedMs: 0,
          handedOff: false,
          ttlMs: 5_000,
        },
      ],
      [
        'released',
        expect.objectContaining({
          key: 'invoice',
          fence: lock.fence,
          heldMs: 1_234,
          released: true,
        }),
      ],
    ]);
    expect(seen[0]?.[1].id).toBe(seen[1]?.[1].id);
  });

  it('tells a grant handed over on release from one asked for, and how long its waiter waited', async () => {
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend }).acquire('handed');
    const waiters = new LockManager({ backend });
    const seen = record(waiters);
    const waiting = waiters.acquire('handed', { wait: 60_000 });
    await vi.advanceTimersByTimeAsync(300);
    await holder.release();
    await waiting;
    expect(seen.map(([name]) => name)).toEqual(['acquired']);
    expect(seen[0]?.[1]).toMatchObject({ handedOff: true, waitedMs: 300 });
  });

  it('tells of extensions, by hand and automatic, and of the loss of an unconfirmed lease', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend });
    const seen = record(locks);
    const lock = await locks.acquire('renewed', { ttl: 3_000, autoExtend: true });
    await lock.extend(6_000);
    await vi.advanceTimersByTimeAsync(2_000);
    backend.extendFault = 'reject';
    await vi.advanceTimersByTimeAsync(6_000);
    const names = seen.map(([name]) => name);
    expect(names.slice(0, 3)).toEqual(['acquired', 'extended', 'extended']);
    expect(seen[1]?.[1]).toMatchObject({ ttlMs: 6_000, automatic: false });
    expect(seen[2]?.[1]).toMatchObject({ ttlMs: 6_000, automatic: true });
    // Every failed renewal is told, then the loss.
    const failures = seen.filter(([name]) => name === 'extend-failed');
    expect(failures.length).toBeGreaterThan(0);
    expect(failures[0]?.[1]).toMatchObject({ automatic: true, error: expect.any(BackendError) });
    expect(names.at(-1)).toBe('lost');
    expect(seen.at(-1)?.[1]).toMatchObject({ reason: expect.any(LockLostError) });
    expect(lock.held).toBe(false);
  });

  it('tells of a loss the backend reports, and of a timed-out wait', async () => {
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend });
    const seen = record(locks);
    const lock = await locks.acquire('taken', { ttl: 1_000 });
    await backend.release({ key: 'taken', token: lock.token });
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    const other = await new LockManager({ backend }).acquire('busy');
    const timingOut = locks.acquire('busy', { wait: 500 }).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(500);
    expect(await timingOut).toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect(seen.map(([name]) => name)).toEqual(['acquired', 'lost', 'timed-out']);
    expect(seen[2]?.[1]).toMatchObject({ key: 'busy', waitedMs: 500 });
    await other.release();
  });

  it('tells of a release that failed inside withLock, which never hides what the callback returned', async () => {
    const backend = new RecordingBackend();
    const locks = new LockManager({ backend });
    const seen = record(locks);
    const result = await locks.withLock('job', () => {
      backend.releaseFault = true;
      return 'done';
    });
    expect(result).toBe('done');
    expect(seen.map(([name]) => name)).toEqual(['acquired', 'release-failed']);
    expect(seen[1]?.[1]).toMatchObject({ during: 'release', error: expect.any(BackendError) });
  });

  it('never carries a token, printed or not', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const seen = record(locks);
    const lock = await locks.acquire('secret', { ttl: 1_000 });
    await lock.extend();
    await vi.advanceTimersByTimeAsync(2_000);
    await lock.release();
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const [, event] of seen) {
      expect(JSON.stringify(event)).not.toContain(lock.token);
      expect(inspect(event, { depth: 10 })).not.toContain(lock.token);
    }
  });

  it('keeps locking when a listener throws, and reports the error as uncaught', () => {
    // In a process of its own: an uncaught exception is what the test checks for.
    const script = `
      import { LockManager } from '@deadbolt/core';
      import { MemoryBackend } from '@deadbolt/memory';
      process.on('uncaughtException', (error) => console.log('uncaught:', error.message));
      const locks = new LockManager({ backend: new MemoryBackend() });
      locks.on('acquired', () => { throw new Error('listener bug'); });
      const lock = await locks.acquire('k');
      setTimeout(() => console.log('held:', lock.held), 10);
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
    });
    expect(output.split('\n')).toEqual(['uncaught: listener bug', 'held: true', '']);
  });

  it('stops calling a listener once it is removed, and refuses an unknown event', async () => {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const listener = vi.fn();
    const stop = locks.on('acquired', listener);
    await (await locks.acquire('a')).release();
    stop();
    await (await locks.acquire('b')).release();
    expect(listener).toHaveBeenCalledTimes(1);
    expect(() => locks.on('granted' as never, listener)).toThrow('invalid name');
  });
});

describe('diagnostics channels', () => {
  it('publishes every event on deadbolt:<name>, for every manager', async () => {
    const released: unknown[] = [];
    const onReleased = (message: unknown) => released.push(message);
    subscribe('deadbolt:released', onReleased);
    try {
      const lock = await new LockManager({ backend: new MemoryBackend() }).acquire('k');
      await lock.release();
      expect(released).toEqual([expect.objectContaining({ key: 'k', released: true })]);
    } finally {
      unsubscribe('deadbolt:released', onReleased);
    }
  });

  it('traces each acquisition on tracing:deadbolt:acquire:*, with its outcome', async () => {
    const trace = tracingChannel<unknown, AcquireTraceContext>('deadbolt:acquire');
    const phases: [string, AcquireTraceContext][] = [];
    const handlers = {
      start: (context: AcquireTraceContext) => phases.push(['start', { ...context }]),
      end: () => undefined,
      asyncStart: () => undefined,
      asyncEnd: (context: AcquireTraceContext) => phases.push(['asyncEnd', { ...context }]),
      error: (context: AcquireTraceContext) => phases.push(['error', { ...context }]),
    };
    trace.subscribe(handlers);
    try {
      const locks = new LockManager({ backend: new MemoryBackend(), owner: 'o' });
      const lock = await locks.acquire('traced');
      expect(await locks.tryAcquire('traced')).toBeNull();
      await lock.release();
      expect(phases).toEqual([
        ['start', { key: 'traced', owner: 'o', weight: 1, limit: 1, waits: true }],
        [
          'asyncEnd',
          expect.objectContaining({
            waits: true,
            result: { id: expect.any(Number), fence: lock.fence },
          }),
        ],
        ['start', expect.objectContaining({ waits: false })],
        ['asyncEnd', expect.objectContaining({ waits: false, result: null })],
      ]);
    } finally {
      trace.unsubscribe(handlers);
    }
  });
});
