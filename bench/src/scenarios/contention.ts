import { setTimeout as sleep } from 'node:timers/promises';
import { nowMs, sleepUntil } from '../clock.js';
import type { LockClient } from '../contenders/index.js';
import { percentile } from '../stats.js';

/** How long each worker holds the lock: the critical section of scenarios 2, 3 and 5. */
export const CRITICAL_SECTION_MS = 1;

/** One granted acquisition, on the {@link nowMs} clock. */
export interface Acquisition {
  worker: string;
  /** When `acquire()` was called. */
  calledAt: number;
  /** When `acquire()` resolved: the critical section starts here. */
  grantedAt: number;
  /** When the critical section ended, just before `release()` was called. */
  exitedAt: number;
}

/** One acquisition the library gave up on (its timeout or retry limit). */
export interface Failure {
  worker: string;
  calledAt: number;
  failedAt: number;
  error: string;
}

/** What a group of workers recorded; plain data, so child processes can send it over IPC. */
export interface ContentionLog {
  acquisitions: Acquisition[];
  failures: Failure[];
  /** Workers still waiting when the window closed, with when they had called `acquire()`. */
  waitingAtEnd: { worker: string; calledAt: number }[];
  /** Release calls that threw. */
  releaseErrors: number;
}

/** When workers run: they start at `startAt`, are measured from `windowStart` to `windowEnd`. */
export interface ContentionPlan {
  key: string;
  workers: readonly string[];
  startAt: number;
  windowStart: number;
  windowEnd: number;
  /** How long to wait for workers still busy after the window before reporting anyway. */
  drainMs: number;
}

/** A finished run: the log, and a promise that settles once every worker has stopped. */
export interface ContentionRun {
  log: ContentionLog;
  stopped: Promise<void>;
}

/**
 * Runs `plan.workers` workers on one client, all on `plan.key`: acquire, hold for
 * {@link CRITICAL_SECTION_MS}, release, again, until the window closes. A worker that is waiting
 * when the window closes finishes that acquisition; the log is reported once all have stopped or
 * `drainMs` has passed, whichever is first (stragglers go on in the background: `stopped`).
 */
export async function runContention(
  client: LockClient,
  plan: ContentionPlan,
): Promise<ContentionRun> {
  const log: ContentionLog = { acquisitions: [], failures: [], waitingAtEnd: [], releaseErrors: 0 };
  const waiting = new Map<string, number>();
  const snapshot = sleepUntil(plan.windowEnd).then(() => {
    for (const [worker, calledAt] of waiting) log.waitingAtEnd.push({ worker, calledAt });
  });
  await sleepUntil(plan.startAt);
  const worker = async (name: string) => {
    while (nowMs() < plan.windowEnd) {
      const calledAt = nowMs();
      waiting.set(name, calledAt);
      let release: () => Promise<void>;
      try {
        release = await client.acquire(plan.key);
      } catch (error) {
        waiting.delete(name);
        log.failures.push({ worker: name, calledAt, failedAt: nowMs(), error: describe(error) });
        continue;
      }
      const grantedAt = nowMs();
      waiting.delete(name);
      await sleep(CRITICAL_SECTION_MS);
      log.acquisitions.push({ worker: name, calledAt, grantedAt, exitedAt: nowMs() });
      try {
        await release();
      } catch {
        log.releaseErrors += 1;
      }
    }
  };
  const stopped = Promise.all(plan.workers.map(worker)).then(() => undefined);
  await snapshot;
  await Promise.race([stopped, sleep(plan.drainMs)]);
  return {
    log: {
      acquisitions: [...log.acquisitions],
      failures: [...log.failures],
      waitingAtEnd: log.waitingAtEnd,
      releaseErrors: log.releaseErrors,
    },
    stopped,
  };
}

/** The figures of scenarios 2 and 3 for one run. */
export interface ContentionMetrics extends Record<string, number> {
  acquisitionsPerSec: number;
  ownerChangesPerSec: number;
  waitP50Ms: number;
  waitP99Ms: number;
  waitMaxMs: number;
  fairness: number;
  violations: number;
  timeouts: number;
}

/**
 * Figures of one run from the merged logs of every worker (of every process).
 *
 * - acquisitions: grants inside the window; owner changes: those whose worker differs from the
 *   worker of the grant just before (in grant order, across processes);
 * - wait: `acquire()` call to grant, for grants inside the window, plus workers still waiting
 *   when the window closed at the time they had waited by then (so starvation shows);
 * - fairness: most / fewest grants per worker inside the window (Infinity when one got none);
 * - violations: critical sections that began before an earlier one ended, over every recorded
 *   section (window and drain), on the machine-wide monotonic clock;
 * - timeouts: acquisitions the library gave up on, from the window start until workers stopped.
 */
export function analyseContention(
  log: ContentionLog,
  workers: readonly string[],
  windowStart: number,
  windowEnd: number,
): ContentionMetrics {
  const seconds = (windowEnd - windowStart) / 1000;
  const byGrant = [...log.acquisitions].sort((a, b) => a.grantedAt - b.grantedAt);
  const perWorker = new Map(workers.map((worker) => [worker, 0]));
  const waits: number[] = [];
  let granted = 0;
  let ownerChanges = 0;
  let violations = 0;
  let latestExit = Number.NEGATIVE_INFINITY;
  let previous: Acquisition | undefined;
  for (const acquisition of byGrant) {
    if (acquisition.grantedAt < latestExit) violations += 1;
    latestExit = Math.max(latestExit, acquisition.exitedAt);
    const inWindow = acquisition.grantedAt >= windowStart && acquisition.grantedAt < windowEnd;
    if (inWindow) {
      granted += 1;
      if (previous !== undefined && previous.worker !== acquisition.worker) ownerChanges += 1;
      perWorker.set(acquisition.worker, (perWorker.get(acquisition.worker) ?? 0) + 1);
      waits.push(acquisition.grantedAt - acquisition.calledAt);
    }
    previous = acquisition;
  }
  for (const { calledAt } of log.waitingAtEnd) waits.push(windowEnd - calledAt);
  const counts = [...perWorker.values()];
  const fewest = Math.min(...counts);
  const most = Math.max(...counts);
  return {
    acquisitionsPerSec: granted / seconds,
    ownerChangesPerSec: ownerChanges / seconds,
    waitP50Ms: percentile(waits, 50),
    waitP99Ms: percentile(waits, 99),
    waitMaxMs: waits.length === 0 ? Number.NaN : Math.max(...waits),
    fairness: fewest === 0 ? Number.POSITIVE_INFINITY : most / fewest,
    violations,
    timeouts: log.failures.filter((failure) => failure.failedAt >= windowStart).length,
  };
}

/** Joins the logs of several processes. */
export function mergeLogs(logs: readonly ContentionLog[]): ContentionLog {
  return {
    acquisitions: logs.flatMap((log) => log.acquisitions),
    failures: logs.flatMap((log) => log.failures),
    waitingAtEnd: logs.flatMap((log) => log.waitingAtEnd),
    releaseErrors: logs.reduce((sum, log) => sum + log.releaseErrors, 0),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
