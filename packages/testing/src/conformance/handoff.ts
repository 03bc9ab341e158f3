import { type HandedOff, type LockBackend, LockManager } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  absorbFirstWakeUp,
  type ConformanceContext,
  eventually,
  expectGranted,
  type HandingBackend,
  queued,
  request,
  sleep,
  withFeature,
} from './context.js';

/**
 * A queued request that asks to be handed the lock on release, as its `attempt`-th request, for
 * the lease the request asks for unless `handoffTtlMs` says less.
 */
const handed = (
  key: string,
  token: string,
  { attempt = 1, handoffTtlMs, ...overrides }: HandedOptions = {},
) => {
  const base = queued(key, token, overrides);
  return { ...base, handoff: { attempt, ttlMs: handoffTtlMs ?? base.ttlMs } };
};

type HandedOptions = Parameters<typeof queued>[2] & { attempt?: number; handoffTtlMs?: number };

/** Waits for a release of `key` as the waiter of `token`'s `attempt`. */
const waitAs = (backend: HandingBackend, key: string, token: string, attempt = 1, since?: number) =>
  backend.handoff.waitForGrant({
    key,
    signal: new AbortController().signal,
    token,
    attempt,
    ...(since === undefined ? {} : { since }),
  });

/** The grant a wait resolved with; fails the test when it resolved without one. */
function expectHandedOff(handedOff: HandedOff | null): HandedOff {
  expect(handedOff).toMatchObject({ ok: true });
  return handedOff as HandedOff;
}

/** The queue place of the test of a place that was not renewed. */
const PLACE_TTL_MS = 8_000;

export function handoffTests(ctx: ConformanceContext): void {
  const withWaits = (body: (backend: HandingBackend) => Promise<void>) => () =>
    body(withFeature<HandingBackend>(ctx, 'handoff'));
  /** The holders of `key` by token, when the backend can tell (`inspection`). */
  const holdersOf = async (backend: LockBackend, key: string) =>
    backend.inspection &&
    ((await backend.inspection.inspect({ key }))?.holders ?? [])
      .map((holder) => holder.token)
      .sort();

  it(
    'hands the released lock to the queued waiter, for the lease it asked to be handed, with a higher fence, without another request',
    withWaits(async (backend) => {
      const key = ctx.key();
      const holder = expectGranted(await backend.acquire(request(key, 'holder')));
      await absorbFirstWakeUp(ctx, key);
      const sentAt = Date.now();
      const waiter = handed(key, 'waiter', {
        ttlMs: 60_000,
        handoffTtlMs: 20_000,
        owner: 'waiter:7',
      });
      expect((await backend.queue.acquire(waiter)).ok).toBe(false);
      const waiting = waitAs(backend, key, 'waiter', 1, sentAt);
      await sleep(50);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      const handedOff = expectHandedOff(await waiting);
      expect(handedOff).toMatchObject({ ok: true, ttlMs: 20_000, attempt: 1 });
      expect(handedOff.fence).toBeGreaterThan(holder.fence);
      expect(handedOff.afterMs).toBeGreaterThanOrEqual(40);
      expect(handedOff.afterMs).toBeLessThanOrEqual(Date.now() - sentAt);
      // The waiter holds it: nobody else gets it, and it gives it back with its token.
      expect((await backend.acquire(request(key, 'other'))).ok).toBe(false);
      const holders = (await backend.inspection?.inspect({ key }))?.holders;
      if (holders) {
        expect(holders.map((one) => one.token)).toEqual(['waiter']);
        expect(holders[0]?.ttlMs).toBeLessThanOrEqual(20_000);
        expect(holders[0]?.owner).toBe('waiter:7');
      }
      expect(await backend.release({ key, token: 'waiter' })).toBe(true);
      expect((await backend.acquire(request(key, 'other'))).ok).toBe(true);
    }),
  );

  it(
    'never hands a waiter the grant of an earlier attempt, whose lease may have ended since',
    withWaits(async (backend) => {
      const key = ctx.key();
      expectGranted(await backend.acquire(request(key, 'holder')));
      await absorbFirstWakeUp(ctx, key);
      // Attempt 1 is handed a lease of 50 ms while its waiter is not listening (its news is late).
      expect((await backend.queue.acquire(handed(key, 'waiter', { handoffTtlMs: 50 }))).ok).toBe(
        false,
      );
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      await sleep(150);
      // That lease ended: someone else takes the lock, and the waiter's attempt 2 queues again.
      const other = expectGranted(await backend.acquire(request(key, 'other')));
      expect((await backend.queue.acquire(handed(key, 'waiter', { attempt: 2 }))).ok).toBe(false);
      // Waiting for attempt 2, the waiter hears of a grant only once it is handed the lock again.
      const waiting = waitAs(backend, key, 'waiter', 2);
      await sleep(50);
      expect(await backend.release({ key, token: 'other' })).toBe(true);
      const handedOff = expectHandedOff(await waiting);
      expect(handedOff.attempt).toBe(2);
      expect(handedOff.fence).toBeGreaterThan(other.fence);
      expect(await backend.release({ key, token: 'waiter' })).toBe(true);
    }),
  );

  it(
    'keeps the lease it hands to a waiter whose own earlier lease had expired',
    withWaits(async (backend) => {
      const key = ctx.key();
      const permits = { limit: 2 };
      expectGranted(await backend.acquire(request(key, 'waiter', { ...permits, ttlMs: 100 })));
      expectGranted(await backend.acquire(request(key, 'holder', permits)));
      await absorbFirstWakeUp(ctx, key);
      // Still holding one permit, the waiter asks for both and queues for the second.
      const both = handed(key, 'waiter', { ...permits, weight: 2 });
      expect((await backend.queue.acquire(both)).ok).toBe(false);
      // Its lease of one permit runs out while it waits.
      await sleep(200);
      const waiting = waitAs(backend, key, 'waiter');
      await sleep(50);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      expectHandedOff(await waiting);
      // It holds both permits: nobody else gets one, and only it can give them back.
      expect((await backend.acquire(request(key, 'other', permits))).ok).toBe(false);
      const holders = (await backend.inspection?.inspect({ key }))?.holders;
      if (holders) expect(holders).toMatchObject([{ token: 'waiter', weight: 2 }]);
      expect(await backend.release({ key, token: 'waiter' })).toBe(true);
      expectGranted(await backend.acquire(request(key, 'other', permits)));
    }),
  );

  it(
    'keeps a grant handed over while its waiter was not listening, for its next wait',
    withWaits(async (backend) => {
      const key = ctx.key();
      expectGranted(await backend.acquire(request(key, 'holder')));
      await absorbFirstWakeUp(ctx, key);
      expect((await backend.queue.acquire(handed(key, 'waiter'))).ok).toBe(false);
      // As when the release lands while the waiter's last request is still on its way back.
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      await sleep(50);
      const handedOff = await waitAs(backend, key, 'waiter', 1, Date.now() - 1_000);
      expect(expectHandedOff(handedOff).ok).toBe(true);
      expect(await backend.release({ key, token: 'waiter' })).toBe(true);
    }),
  );

  it(
    'grants a waiter that missed its handoff when it asks again, past those queued behind it',
    withWaits(async (backend) => {
      const key = ctx.key();
      const holder = expectGranted(await backend.acquire(request(key, 'holder')));
      expect((await backend.queue.acquire(handed(key, 'first'))).ok).toBe(false);
      expect((await backend.queue.acquire(handed(key, 'second'))).ok).toBe(false);
      // Nobody listens: if the lock is handed to 'first', the news is lost.
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      const again = expectGranted(await backend.queue.acquire(handed(key, 'first')));
      expect(again.fence).toBeGreaterThan(holder.fence);
      expect((await backend.queue.acquire(handed(key, 'second'))).ok).toBe(false);
      expect(await backend.release({ key, token: 'first' })).toBe(true);
    }),
  );

  it(
    'hands over in queue order, and only what fits',
    withWaits(async (backend) => {
      const key = ctx.key();
      const permits = { limit: 2 };
      expectGranted(await backend.acquire(request(key, 'a', permits)));
      expectGranted(await backend.acquire(request(key, 'b', permits)));
      await absorbFirstWakeUp(ctx, key);
      expect((await backend.queue.acquire(handed(key, 'two', { ...permits, weight: 2 }))).ok).toBe(
        false,
      );
      expect((await backend.queue.acquire(handed(key, 'one', permits))).ok).toBe(false);
      // One permit back: not enough for the head, and the one behind it may not pass it.
      expect(await backend.release({ key, token: 'a' })).toBe(true);
      await sleep(100);
      expect(await holdersOf(backend, key)).toEqual(backend.inspection && ['b']);
      const two = waitAs(backend, key, 'two', 1, Date.now());
      await sleep(50);
      expect(await backend.release({ key, token: 'b' })).toBe(true);
      expect(expectHandedOff(await two).ok).toBe(true);
      expect(await holdersOf(backend, key)).toEqual(backend.inspection && ['two']);
      expect((await backend.queue.acquire(handed(key, 'one', permits))).ok).toBe(false);
      expect(await backend.release({ key, token: 'two' })).toBe(true);
    }),
  );

  it(
    'does not hand the lock to a place its waiter stopped renewing, which may have died',
    withWaits(async (backend) => {
      const key = ctx.key();
      expectGranted(await backend.acquire(request(key, 'holder')));
      // A place of 8 s, so that what follows the sleep is done before it runs out even on a
      // loaded machine (with 400 ms, a busy Sentinel run once saw the place gone at `barging`).
      expect(
        (await backend.queue.acquire(handed(key, 'silent', { placeTtlMs: PLACE_TTL_MS }))).ok,
      ).toBe(false);
      // Past half of the place's TTL without renewing it.
      await sleep(PLACE_TTL_MS / 2 + 100);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      expect(await holdersOf(backend, key)).toEqual(backend.inspection && []);
      // The place still stands until it runs out: others wait behind it, its waiter gets it.
      expect((await backend.acquire(request(key, 'barging'))).ok).toBe(false);
      expectGranted(
        await backend.queue.acquire(handed(key, 'silent', { placeTtlMs: PLACE_TTL_MS })),
      );
      expect(await backend.release({ key, token: 'silent' })).toBe(true);
    }),
  );

  it(
    'lets a LockManager waiter in another process be handed the lock with no request after the release',
    withWaits(async () => {
      const key = ctx.key();
      const counted = ctx.counted();
      const [holderSide] = ctx.managers(1);
      // Polling effectively off: the waiter's only requests are its queue place's renewals,
      // every 500 ms, not due by the release below.
      const waiterSide = new LockManager({
        backend: counted.backend,
        backoff: { initialMs: 600_000, maxMs: 600_000 },
      });
      const lock = await holderSide!.acquire(key);
      // Subscribed before the waiter arrives: a new subscription asks its waiter to try again.
      await absorbFirstWakeUp(ctx, key);
      const waiting = waiterSide.acquire(key, { fair: true, wait: 30_000 });
      await eventually('the waiter asked', () => counted.calls.includes('queue.acquire'));
      await sleep(50);
      const acquires = () => counted.calls.filter((call) => call === 'queue.acquire').length;
      const before = acquires();
      expect(await lock.release()).toBe(true);
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(lock.fence);
      expect(next.held).toBe(true);
      // Handed the lock, the waiter needs no request after the release.
      expect(acquires() - before).toBe(0);
      expect(await next.release()).toBe(true);
    }),
  );
}
