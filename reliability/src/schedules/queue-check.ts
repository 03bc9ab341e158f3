/**
 * A fairness invariant: a queued (fair) attempt that the backend refused leaves its waiter in the
 * queue. Checked on Redis by reading the lock hash right after the refusal, before the manager
 * sees it, so the waiter is known to be still inside its wait: the hash must then hold the
 * waiter's queue place `?<token>`, or a lease `#<token>` if a release handed it the lock since.
 */
import { nowMs } from '../clock.js';
import type { RedisLeaseReader } from './lease-check.js';
import type { RefusedQueuedAttempt } from './observed-backend.js';
import { LOCK_KEY } from './plan.js';
import type { ViolationReport } from './protocol.js';

export interface QueueCheckContext {
  process: number;
  report(violation: ViolationReport): void;
  tally(outcome: string): void;
}

/**
 * Judges one refused attempt. Only three things remove a place or a handed-off lease: the waiter
 * itself (its next attempt, or a release when it gives up), expiry, and a handoff (which leaves a
 * lease). The waiter is paused here, a release it asked for meanwhile (an abort) skips the
 * verdict, and a read whose reply came within the shorter of the place's and the lease's TTL of
 * sending the attempt cannot see either expired: the server ran the attempt after it was sent
 * and the read before its reply came.
 */
export async function checkQueuePlace(
  context: QueueCheckContext,
  reader: RedisLeaseReader,
  attempt: RefusedQueuedAttempt,
  client: number,
): Promise<void> {
  const { request, sentAt, previousSentAt } = attempt;
  let state: { queued: boolean; holds: boolean };
  try {
    state = await reader.queueState(LOCK_KEY, request.token);
  } catch {
    context.tally('queue:unreachable');
    return;
  }
  const repliedAt = nowMs();
  // A millisecond less for the difference in rate between this clock and the server's.
  const safeForMs = Math.min(request.ttlMs, request.queueTtlMs ?? 0) - 1;
  if (attempt.releasedSince() || repliedAt - sentAt >= safeForMs) {
    context.tally('queue:undetermined');
    return;
  }
  if (state.queued || state.holds) {
    context.tally('queue:ok');
    return;
  }
  const previous =
    previousSentAt === undefined
      ? 'it was its first attempt'
      : `its previous attempt was sent ${(sentAt - previousSentAt).toFixed(0)} ms before it` +
        (sentAt - previousSentAt > (request.queueTtlMs ?? 0)
          ? ', long enough for its old place to run out'
          : '');
  context.report({
    kind: 'queue-place-lost',
    text:
      `process ${context.process} client ${client}: a queued attempt was refused, and ` +
      `${(repliedAt - sentAt).toFixed(1)} ms after sending it the lock hash held neither a queue ` +
      `place nor a lease for its token while it still waited; ${previous}`,
    from: sentAt,
    to: repliedAt,
  });
}
