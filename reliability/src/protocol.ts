/**
 * Messages between the parent (store, overlap detector, fault injector) and the worker children,
 * over Node's IPC channel. Times are milliseconds on the machine-wide monotonic clock (see clock.ts).
 */

/** Which backend a worker builds. */
export type BackendSpec =
  | { kind: 'single'; url: string }
  /** quorum() over one fail-fast client per URL. */
  | { kind: 'quorum'; urls: string[] };

/** What a worker does on its next critical section, after its read, for a fault trial. */
export interface StallOrder {
  trial: number;
  /**
   * `kill`: wait to be SIGKILLed. `freeze`: wait `holdMs` (the parent SIGSTOPs it meanwhile), then
   * write on purpose, even though the lease is gone. `hold`: keep the lock `holdMs`, then go on
   * as usual (checking the signal before writing).
   */
  mode: 'kill' | 'freeze' | 'hold';
  holdMs: number;
  /**
   * hold only: first extend the lease to this many ms, so that the fault (a server restart that a
   * loaded machine makes slow) cannot outlast it; the `stalled` report gives the new lease end.
   */
  leaseMs?: number;
  /** freeze only: go on when the parent says `resume` instead of when the wait ends. */
  resumeOnMessage: boolean;
}

/** Parent → worker. */
export type ToWorker =
  | {
      type: 'start';
      worker: number;
      backend: BackendSpec;
      key: string;
      ttlMs: number;
      waitMs: number;
    }
  | { type: 'read-reply'; id: number; ok: boolean; value: number }
  | { type: 'write-reply'; id: number; ok: boolean }
  | ({ type: 'stall' } & StallOrder)
  | { type: 'resume'; trial: number }
  | { type: 'finish' };

/** A worker's counts, sent when it finishes. */
export interface WorkerSummary {
  acquisitions: number;
  /** Acquire calls that failed, by error code (`LOCK_TIMEOUT`, `BACKEND_ERROR`, `QUORUM_ERROR`, …). */
  acquireErrors: Record<string, number>;
  /** Critical sections left without writing because `lock.held` was false. */
  abandoned: number;
  /** Releases that resolved false (the lease was already gone) or failed. */
  releasesFalse: number;
  releaseErrors: number;
}

/** Worker → parent. */
export type FromWorker =
  | { type: 'ready' }
  /** The first access of a critical section; `start` is when acquire resolved, `leaseEnd` when the lease ends at the latest. */
  | { type: 'read'; id: number; fence: number; start: number; leaseEnd: number }
  | { type: 'write'; id: number; fence: number; value: number }
  /** The critical section is over (sent before the release request). */
  | { type: 'exit'; fence: number; end: number }
  /** Holding through a fault trial; `leaseEnd` as in `read`, later if the order lengthened it. */
  | { type: 'stalled'; trial: number; fence: number; leaseEnd: number }
  /** After a freeze: what the worker saw when it ran again, and the fate of its deliberate write. */
  | {
      type: 'frozen-report';
      trial: number;
      fence: number;
      leaseEnd: number;
      /** When lock.signal's abort event ran; null if it had not by the time of the write. */
      abortedAt: number | null;
      /** When the worker's own code ran again, right before its write. */
      resumedAt: number;
      /** lock.signal.aborted when the worker's code ran again, before anything else touched the lock. */
      signalAbortedAtWrite: boolean;
      /** lock.held right after that (it checks the clock). */
      heldAtWrite: boolean;
      writeAccepted: boolean;
    }
  | { type: 'hold-report'; trial: number; fence: number; held: boolean; released: boolean }
  /** An acquire call that failed (a server down, a timeout); `at` on the monotonic clock. */
  | { type: 'acquire-error'; code: string; at: number }
  | { type: 'summary'; summary: WorkerSummary }
  | { type: 'fatal'; message: string };
