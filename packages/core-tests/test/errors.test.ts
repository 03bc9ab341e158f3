import {
  BackendError,
  DeadboltError,
  InvalidArgumentError,
  LockLostError,
  LockManager,
  LockNotHeldError,
  LockTimeoutError,
  QuorumError,
} from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RecordingBackend } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('error classes', () => {
  it.each([
    [new LockTimeoutError('k', 5), 'LOCK_TIMEOUT', 'LockTimeoutError'],
    [new LockLostError('k', 'expired'), 'LOCK_LOST', 'LockLostError'],
    [new LockNotHeldError('k', 'released'), 'LOCK_NOT_HELD', 'LockNotHeldError'],
    [new QuorumError('no majority', [new Error('down'), null]), 'QUORUM', 'QuorumError'],
    [new BackendError('failed', new Error('ECONNRESET')), 'BACKEND', 'BackendError'],
    [new InvalidArgumentError('ttl', 'bad'), 'INVALID_ARGUMENT', 'InvalidArgumentError'],
  ] as const)('%s has its code, its name and the [deadbolt] prefix', (error, code, name) => {
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(DeadboltError);
    expect(error.code).toBe(code);
    expect(error.name).toBe(name);
    expect(error.message).toMatch(/^\[deadbolt\] \S/);
    expect(String(error)).toMatch(new RegExp(`^${name}: \\[deadbolt\\] `));
    expect(error.stack).toContain(name);
  });

  it('LockTimeoutError carries the key and the time waited, and says what to do', () => {
    const error = new LockTimeoutError('report', 1_500);
    expect(error.key).toBe('report');
    expect(error.waitedMs).toBe(1_500);
    expect(error.message).toContain('"report"');
    expect(error.message).toContain('1500 ms');
    expect(error.message).toContain('raise `wait`');
  });

  it('LockLostError and LockNotHeldError carry the key and the reason', () => {
    const cause = new Error('ECONNRESET');
    const lost = new LockLostError('job', 'the lease expired', { cause });
    expect(lost.key).toBe('job');
    expect(lost.message).toContain('"job"');
    expect(lost.message).toContain('the lease expired');
    expect(lost.cause).toBe(cause);
    const notHeld = new LockNotHeldError('job', 'it was released');
    expect(notHeld.key).toBe('job');
    expect(notHeld.message).toContain('it was released');
  });

  it('BackendError keeps the original error as its cause and quotes it', () => {
    const original = new Error('ECONNRESET');
    const error = new BackendError('acquire of "k" failed', original);
    expect(error.cause).toBe(original);
    expect(error.message).toBe('[deadbolt] acquire of "k" failed: ECONNRESET');
    expect(new BackendError('failed', 'a string').cause).toBe('a string');
  });

  it('QuorumError lists every member and keeps their errors', () => {
    const down = new Error('connect ECONNREFUSED');
    const error = new QuorumError('no majority', [down, null, down]);
    expect(error.causes).toEqual([down, null, down]);
    expect(error.message).toContain('#0: connect ECONNREFUSED');
    expect(error.message).toContain('#1: refused');
    expect(error.cause).toBeInstanceOf(AggregateError);
  });

  it('InvalidArgumentError names the argument', () => {
    const error = new InvalidArgumentError('options.ttl', 'expected a number');
    expect(error.argument).toBe('options.ttl');
    expect(error.message).toBe('[deadbolt] invalid options.ttl: expected a number');
  });
});

describe('errors from real calls', () => {
  it('a backend failure during acquire is a BackendError with the original cause', async () => {
    const backend = new RecordingBackend();
    const original = new Error('ETIMEDOUT');
    backend.acquireGate = Promise.reject(original);
    backend.acquireGate.catch(() => undefined);
    const error = await new LockManager({ backend }).acquire('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).cause).toBe(original);
    expect((error as Error).message).toBe('[deadbolt] acquire of "k" failed: ETIMEDOUT');
  });
});

describe('one copy of core across packages', () => {
  // The memory backend imports `@deadbolt/core`; the tests import core's source. Both must be
  // the same module, or `instanceof` and the manager's error wrapping break.
  it("the memory backend's errors are instances of core's classes", () => {
    const error = (() => {
      try {
        new MemoryBackend({ clok: () => 0 } as never);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toBeInstanceOf(DeadboltError);
    expect((error as InvalidArgumentError).argument).toBe('options.clok');
  });

  it("the manager passes the memory backend's own errors through unwrapped", async () => {
    const backend = new MemoryBackend();
    await backend.close();
    const error = await new LockManager({ backend }).acquire('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    // Wrapped a second time, it would read "acquire of "k" failed: [deadbolt] [memory] …".
    expect((error as Error).message).toBe('[deadbolt] [memory] the backend is closed: closed');
  });

  it("the memory backend's validation errors reach the caller as they are", async () => {
    const backend = new MemoryBackend();
    const error = await backend
      .acquire({ key: 'k', token: 't', ttlMs: 1_000, limit: 1, weight: 2 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).argument).toBe('request.weight');
  });
});
