import { format, inspect } from 'node:util';
import { hideTokens, type LockInfo, LockManager, LockTimeoutError } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('tokens', () => {
  it('do not come from Math.random', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const locks = new LockManager({ backend: new MemoryBackend() });
    const tokens = new Set<string>();
    for (let index = 0; index < 300; index++) {
      const lock = await locks.acquire(`key:${index}`);
      tokens.add(lock.token);
      await lock.release();
    }
    expect(tokens.size).toBe(300);
  });
});

describe('a Lock never shows its token unless asked', () => {
  async function heldLock() {
    const locks = new LockManager({ backend: new MemoryBackend() });
    return { locks, lock: await locks.acquire('payments', { ttl: 10_000 }) };
  }

  it('reads it from lock.token', async () => {
    const { lock } = await heldLock();
    expect(lock.token).toMatch(/^[0-9a-f]{32}$/);
    await lock.release();
  });

  it('redacts it in util.inspect, console.log formats and JSON.stringify', async () => {
    const { lock } = await heldLock();
    const printed = [
      inspect(lock),
      inspect(lock, { depth: 10, showHidden: true }),
      inspect({ nested: [lock] }, { depth: 10 }),
      format(lock),
      format('%s %o %O %j', lock, lock, lock, lock),
      JSON.stringify(lock),
      JSON.stringify({ lock }),
      String(lock),
    ];
    for (const text of printed) expect(text).not.toContain(lock.token);
    expect(inspect(lock)).toMatch(/^Lock \{.*key: 'payments'.*token: '\[redacted\]'/s);
    expect(JSON.parse(JSON.stringify(lock))).toEqual({
      key: 'payments',
      fence: lock.fence,
      expiresAt: lock.expiresAt,
      held: true,
    });
    expect(Object.keys(lock)).not.toContain('token');
    expect({ ...lock }).not.toHaveProperty('token');
    await lock.release();
  });

  it('keeps it out of the errors a holder sees', async () => {
    const { locks, lock } = await heldLock();
    const errors: unknown[] = [];
    // Taken over behind its back: extend learns it lost the lease.
    await locks.backend.release({ key: lock.key, token: lock.token });
    const next = await locks.acquire(lock.key);
    await lock.extend().catch((error: unknown) => errors.push(error));
    errors.push(lock.signal.reason);
    await lock.release();
    await lock.extend().catch((error: unknown) => errors.push(error));
    await locks.acquire(lock.key, { wait: 0 }).catch((error: unknown) => errors.push(error));
    expect(errors.map((error) => (error as Error).name)).toEqual([
      'LockLostError',
      'LockLostError',
      'LockNotHeldError',
      'LockTimeoutError',
    ]);
    expect(errors[3]).toBeInstanceOf(LockTimeoutError);
    for (const error of errors) {
      for (const text of [String(error), (error as Error).stack, inspect(error, { depth: 10 })]) {
        expect(text).not.toContain(lock.token);
        expect(text).not.toContain(next.token);
      }
    }
    await next.release();
  });
});

describe('hideTokens', () => {
  const info = (): LockInfo => ({
    key: 'k',
    holders: [
      { token: 'first-secret', weight: 1, ttlMs: 100 },
      { token: 'second-secret', weight: 2, ttlMs: 200 },
    ],
    fence: 7,
  });

  it('redacts every holder in printed forms and keeps the data as it was', () => {
    const hidden = hideTokens(info());
    for (const text of [
      inspect(hidden, { depth: 10 }),
      JSON.stringify(hidden),
      format('%o', hidden),
    ]) {
      expect(text).not.toMatch(/first-secret|second-secret/);
    }
    expect(JSON.parse(JSON.stringify(hidden)).holders).toEqual([
      { token: '[redacted]', weight: 1, ttlMs: 100 },
      { token: '[redacted]', weight: 2, ttlMs: 200 },
    ]);
    expect(hidden).toEqual(info());
    expect(hidden.holders.map((holder) => holder.token)).toEqual(['first-secret', 'second-secret']);
    expect(Object.keys(hidden.holders[0]!)).toEqual(['token', 'weight', 'ttlMs']);
  });

  it('passes null through', () => {
    expect(hideTokens(null)).toBeNull();
  });

  it('redacts what the memory backend inspect returns', async () => {
    const backend = new MemoryBackend();
    await backend.acquire({ key: 'k', token: 'memory-secret', ttlMs: 1_000, limit: 1, weight: 1 });
    const shown = await backend.inspection.inspect({ key: 'k' });
    expect(shown?.holders[0]?.token).toBe('memory-secret');
    expect(inspect(shown, { depth: 10 })).not.toContain('memory-secret');
    expect(JSON.stringify(shown)).not.toContain('memory-secret');
  });
});
