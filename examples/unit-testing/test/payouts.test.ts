import { LockLostError, LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Ledger, Payouts } from '../src/payouts.js';

/** A ledger whose payments stay pending until the test lets them finish. */
function pendingLedger() {
  const calls: { account: string; signal: AbortSignal; finish: () => void }[] = [];
  const ledger: Ledger = {
    pay: (account, _cents, { signal }) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ account, signal, finish: resolve });
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
  };
  return { ledger, calls };
}

describe('Payouts on the in-memory backend (real timers)', () => {
  it('pays one payout of an account at a time', async () => {
    const backend = new MemoryBackend();
    const { ledger, calls } = pendingLedger();
    // Two managers over one backend stand for two processes.
    const a = new Payouts(new LockManager({ backend }), ledger);
    const b = new Payouts(new LockManager({ backend }), ledger);

    const first = a.pay('acct-1', 100);
    const second = b.pay('acct-1', 200);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    calls[0]?.finish();
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    calls[1]?.finish();
    await expect(Promise.all([first, second])).resolves.toEqual(['paid', 'paid']);
    await backend.close();
  });
});

describe('with fake timers', () => {
  let backend: MemoryBackend;
  let locks: LockManager;

  beforeEach(() => {
    // Fakes Date too: MemoryBackend's default clock is Date.now, so leases expire by fake time.
    vi.useFakeTimers();
    backend = new MemoryBackend();
    locks = new LockManager({ backend });
  });

  afterEach(async () => {
    await backend.close();
    vi.useRealTimers();
  });

  it('expires a lease that nobody extends', async () => {
    const lock = await locks.acquire('k', { ttl: 1_000 });
    expect(lock.held).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lock.held).toBe(false);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    // Someone else can take it now, with a higher fence.
    const next = await new LockManager({ backend }).tryAcquire('k');
    expect(next?.fence).toBeGreaterThan(lock.fence);
    expect(await lock.release()).toBe(false);
  });

  it('counts a lease as lost at 90% of its TTL, before it expires', async () => {
    const lock = await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(899);
    expect(lock.held).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(lock.held).toBe(false);
    // The backend still has it for 100 ms more: nobody else gets it yet.
    expect(await new LockManager({ backend }).tryAcquire('k')).toBeNull();
  });

  it('keeps a withLock lease while the callback runs, however long', async () => {
    const { ledger, calls } = pendingLedger();
    const payouts = new Payouts(locks, ledger);
    const paying = payouts.pay('acct-1', 100);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    // Six TTLs later the lease is still renewed by auto-extension.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls[0]?.signal.aborted).toBe(false);
    calls[0]?.finish();
    await expect(paying).resolves.toBe('paid');
  });

  it("grants a waiter the lock once the holder's lease expires", async () => {
    const stalled = await locks.acquire('k', { ttl: 1_000 });
    const waiting = new LockManager({ backend }).acquire('k', { wait: 5_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    const next = await waiting;
    expect(next.fence).toBeGreaterThan(stalled.fence);
  });

  it('gives up waiting after `wait`', async () => {
    await locks.acquire('payout:acct-1', { ttl: 30_000 });
    const { ledger } = pendingLedger();
    const paying = new Payouts(new LockManager({ backend }), ledger).pay('acct-1', 100);
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(paying).resolves.toBe('busy');
  });

  it('stops the payout when the lock is lost', async () => {
    const { ledger, calls } = pendingLedger();
    const paying = new Payouts(locks, ledger).pay('acct-1', 100);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    // The lease goes away behind the holder's back, as when an operator runs
    // `deadbolt release payout:acct-1 --force`; the next renewal finds it gone.
    const [holder] = (await backend.inspection.inspect({ key: 'payout:acct-1' }))?.holders ?? [];
    await backend.release({ key: 'payout:acct-1', token: holder?.token ?? '' });
    // Expect the rejection before advancing: it happens during the advance, and a rejection
    // nobody handles yet is reported as unhandled.
    const outcome = expect(paying).rejects.toBeInstanceOf(LockLostError);
    await vi.advanceTimersByTimeAsync(10_000 / 3);
    expect(calls[0]?.signal.reason).toBeInstanceOf(LockLostError);
    await outcome;
  });

  it('reports the loss through the listener API', async () => {
    const lost = vi.fn();
    locks.on('lost', lost);
    await locks.acquire('k', { ttl: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lost).toHaveBeenCalledOnce();
    expect(lost.mock.calls[0]?.[0]).toMatchObject({ key: 'k' });
  });
});
