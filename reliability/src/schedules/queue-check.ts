/**
 * A fairness invariant: a waiter that paused (its previous attempt a second or more ago) and
 * whose next queued attempt the backend refused is still in the queue afterwards. Checked on
 * Redis by reading the lock hash right before the attempt and right after its refusal, before
 * the manager sees the refusal, so the waiter is known to be still inside its wait: the hash
 * must then hold a field for the waiter's token, its queue place (or a lease, had a release
 * handed it the lock meanwhile).
 */
import type { QueuedAcquireRequest } from '@deadbolt/core';
import { nowMs } from '../clock.js';
import type { RedisLeaseReader } from './lease-check.js';
import type { QueuedAttempt } from './observed-backend.js';
import { LOCK_KEY } from './plan.js';
import type { ViolationReport } from './protocol.js';

export interface QueueCheckContext {
  process: number;
  client: number;
  reader: RedisLeaseReader;
  report(violation: ViolationReport): void;
  tally(outcome: string): void;
}

/** A waiter counts as paused when its previous attempt is at least this share of a place's TTL old. */
const PAUSED_SHARE = 0.5;

/**
 * Reads the fence before a queued attempt of a waiter that paused, and returns the judgement of
 * its reply. Only three things remove a waiter's place: the waiter itself (its next attempt, or a
 * release when it gives up), expiry, and a grant (a handoff leaves a lease, which may run out and
 * be cleaned away in turn). The waiter is paused here, a release it asked for meanwhile (an
 * abort) skips the verdict, a reply within the place's TTL of sending the attempt rules out its
 * expiry, and a fence that did not move between the two reads rules out any grant, since every
 * grant raises it. So a refused attempt that left no field for the token breaks the invariant.
 */
export async function checkPausedWaiter(context: QueueCheckContext, attempt: QueuedAttempt) {
  const { request, previousSentAt } = attempt;
  const { placeTtlMs } = request;
  if (previousSentAt === undefined || nowMs() - previousSentAt < placeTtlMs * PAUSED_SHARE) {
    return undefined;
  }
  const before = await context.reader.tokenState(LOCK_KEY, request.token).catch(() => undefined);
  if (before === undefined) return undefined;
  return async (result: { ok: boolean }, sentAt: number) => {
    if (result.ok) return;
    const after = await context.reader.tokenState(LOCK_KEY, request.token).catch(() => undefined);
    const repliedAt = nowMs();
    // A millisecond less for the difference in rate between this clock and the server's.
    const determined =
      after !== undefined &&
      after.fence === before.fence &&
      repliedAt - sentAt < placeTtlMs - 1 &&
      !attempt.releasedSince(sentAt);
    if (!determined) {
      context.tally('queue:undetermined');
      return;
    }
    if (after.fields.length > 0) {
      context.tally('queue:ok');
      return;
    }
    context.report(describe(context, request, sentAt, previousSentAt, repliedAt));
  };
}

function describe(
  context: QueueCheckContext,
  request: QueuedAcquireRequest,
  sentAt: number,
  previousSentAt: number,
  repliedAt: number,
): ViolationReport {
  const gap = sentAt - previousSentAt;
  const expired = gap > request.placeTtlMs ? ', long enough for its place to run out' : '';
  return {
    kind: 'queue-place-lost',
    text:
      `process ${context.process} client ${context.client} (token …${request.token.slice(-8)}): ` +
      `a queued attempt sent ${gap.toFixed(0)} ms after its previous one${expired} was refused, ` +
      `and ${(repliedAt - sentAt).toFixed(1)} ms after sending it the lock hash held no field ` +
      'for its token (no queue place, no lease) while no grant had been made meanwhile and it ' +
      'still waited',
    from: sentAt,
    to: repliedAt,
  };
}
