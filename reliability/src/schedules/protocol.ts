/**
 * Messages between the schedule checker (the parent: faults, timeline, verdict) and its client
 * processes, over Node's IPC channel. Times named `from`, `at`, `until` and `calledAt` are
 * milliseconds on the machine-wide monotonic clock (see ../clock.ts), so the parent can put
 * every process's locks on one timeline.
 */
import type { SchedulePlan } from './plan.js';

/** Where a client process's clients find their backend. */
export type Servers =
  /** One redis-server: scripts go to `url`, the subscriber connection through the fault proxy. */
  | { kind: 'redis'; url: string; subscriberUrl: string }
  /** quorum() over one server per URL. */
  | { kind: 'quorum'; urls: string[] }
  /** One MemoryBackend shared by the process's clients. */
  | { kind: 'memory' };

/** Parent → client process. */
export type ToClient =
  | { type: 'start'; plan: SchedulePlan; process: number; servers: Servers }
  /**
   * Keep a lock for `forMs` (extending it): one held now, else the next one granted; answered
   * with `keeping` once a client holds one that it keeps.
   */
  | { type: 'keep-holding'; forMs: number }
  /** Stop: abort every wait, end every hold, release, report and exit. */
  | { type: 'finish' };

/** What a schedule counts: operations by kind and outcome, faults, checks. */
export type Tally = Record<string, number>;

/** What a violation found in a client process says; the parent adds the seed. */
export interface ViolationReport {
  kind: ViolationKind;
  text: string;
  /**
   * The span, on the monotonic clock, that the verdict depends on: from before the grant's
   * request to the check's reply. The parent drops verdicts whose span met an empty restart of
   * redis-server, which forgets every lease and queue place by design.
   */
  from: number;
  to: number;
}

export type ViolationKind =
  /** (a) More permits believed held at one instant than the limit. */
  | 'overlap'
  /** (b) The client's lease ends later than the lease the server holds for its token. */
  | 'lease-ends-earlier-on-server'
  /** (b) The client believes it holds, and the server holds no lease for its token. */
  | 'lease-missing-on-server'
  /** (b) `expiresAt` lies further ahead than the TTL: no request could have given that lease. */
  | 'lease-beyond-ttl'
  /** A refused queued attempt left its waiter neither queued nor holding. */
  | 'queue-place-lost'
  /** A client process died that the schedule did not kill, or a call threw what it never should. */
  | 'client-failure';

/** Client process → parent. */
export type FromClient =
  | { type: 'ready' }
  /** A grant: believed held from `from` until `until` at the latest (its `expiresAt`). */
  | {
      type: 'held';
      lock: number;
      client: number;
      weight: number;
      fence: number;
      how: string;
      /** When the call that was granted began: the lease cannot predate it. */
      calledAt: number;
      from: number;
      until: number;
    }
  /** An extension went through: the lock is now believed held until `until` at the latest. */
  | { type: 'extended'; lock: number; until: number }
  /** The belief ended `at` (release called, or the loss seen), bounded by its final `until`. */
  | { type: 'ended'; lock: number; at: number; until: number }
  /** Counts since the last report; sent every so often and at the end. */
  | { type: 'counts'; operations: Tally; faults: Tally; checks: Tally }
  | { type: 'violation'; violation: ViolationReport }
  /** A client holds a lock now and keeps it, as `keep-holding` asked. */
  | { type: 'keeping' }
  | { type: 'fatal'; message: string };
