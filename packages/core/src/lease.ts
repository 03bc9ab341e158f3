import type { AcquireGranted, HandedOff } from './backend.js';

/**
 * A lease as this process knows it, the one form a lease's timing takes from the backend's answer
 * to a {@link Lock}: it began no earlier than `startedAt` (epoch ms by this process's clock) and
 * lasts `ttlMs` by the backend's clock. Every figure of a lock derives from it.
 */
export interface Lease {
  readonly startedAt: number;
  readonly ttlMs: number;
}

/**
 * Share of the lease kept in reserve: a lease stops counting as held this long before it could
 * expire, so a holder that watches `lock.signal` can stop before anyone else could acquire.
 */
const SAFETY_FRACTION = 0.1;

/** Auto-extension renews after this share of the lease has passed. */
const RENEW_FRACTION = 1 / 3;

/**
 * The lease of a grant whose request left at `sentAt`: the backend counted it from when the
 * request arrived, later.
 */
export function grantedLease(granted: AcquireGranted, sentAt: number): Lease {
  return { startedAt: sentAt, ttlMs: granted.ttlMs };
}

/**
 * The lease of a handoff to the attempt that left at `attemptSentAt`: it began `afterMs` after
 * that attempt arrived, by the backend's clock, and so no earlier than `attemptSentAt + afterMs`.
 */
export function handedLease(handedOff: HandedOff, attemptSentAt: number): Lease {
  return { startedAt: attemptSentAt + handedOff.afterMs, ttlMs: handedOff.ttlMs };
}

/** When the lease ends at the latest. */
export function leaseEnd(lease: Lease): number {
  return lease.startedAt + lease.ttlMs;
}

/** When the lease stops counting as held: a tenth of it before it could expire. */
export function lossPoint(lease: Lease): number {
  return lease.startedAt + lease.ttlMs * (1 - SAFETY_FRACTION);
}

/**
 * When a holder that keeps its lease renews it: `everyMs` in when the holder chose an interval,
 * else a third of the way in.
 */
export function renewalPoint(lease: Lease, everyMs?: number): number {
  return lease.startedAt + (everyMs ?? lease.ttlMs * RENEW_FRACTION);
}

/** The longest renewal interval that still renews a `ttlMs` lease before its loss point. */
export function longestRenewalIntervalMs(ttlMs: number): number {
  return ttlMs * (1 - SAFETY_FRACTION);
}

/** How soon a failed renewal is tried again: often enough for a few tries before the loss point. */
export function renewalRetryMs(lease: Lease): number {
  return Math.max(1, (lease.ttlMs * SAFETY_FRACTION) / 4);
}
