/** Figures of a run: markdown for people, JSON for the record. */

import type { FaultId, TrialResult } from './faults.js';
import type { WorkerSummary } from './protocol.js';

export interface WorkloadFigures {
  name: string;
  workers: number;
  ttlMs: number;
  acquisitions: number;
  acceptedIncrements: number;
  finalCounter: number;
  lostUpdates: number;
  /** Writes that did not add exactly one to the value they replaced. */
  nonIncrements: number;
  staleReadsRejected: number;
  staleWritesRejected: number;
  overlaps: number;
  /** Smallest gap between a section's end (bounded by its lease) and the next grant, ms. */
  closestApproachMs: number;
  workerCounts: WorkerSummary;
  unexpectedExits: string[];
}

export interface FaultFigures {
  fault: FaultId;
  measuredFrom: string;
  trials: number;
  keptMutualExclusion: number;
  passed: number;
  recoveryP50Ms: number | null;
  recoveryMaxMs: number | null;
}

export interface RunResults {
  mode: 'quick' | 'full';
  startedAt: string;
  durationS: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; redis: string };
  workloads: WorkloadFigures[];
  faults: FaultFigures[];
  trials: TrialResult[];
  violations: string[];
}

/** What each fault's recovery time counts from. */
export const MEASURED_FROM: Record<FaultId, string> = {
  'kill-holder': 'the SIGKILL',
  'freeze-holder': 'the SIGSTOP',
  'redis-restart-empty': 'the server answering again',
  'redis-restart-with-data': 'the server answering again',
  'proxy-latency': 'the end of the latency',
  'proxy-drop': 'the reset',
  'proxy-blackhole': 'the heal',
  'quorum-minority-then-majority': 'the majority answering again',
};

function nearestRank(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function summariseFaults(trials: readonly TrialResult[]): FaultFigures[] {
  const byFault = new Map<FaultId, TrialResult[]>();
  for (const trial of trials)
    byFault.set(trial.fault, [...(byFault.get(trial.fault) ?? []), trial]);
  return [...byFault].map(([fault, results]) => {
    const recoveries = results.flatMap((result) =>
      result.recoveryMs === null ? [] : [result.recoveryMs],
    );
    return {
      fault,
      measuredFrom: MEASURED_FROM[fault],
      trials: results.length,
      keptMutualExclusion: results.filter((result) => result.keptMutualExclusion).length,
      passed: results.filter((result) => result.ok).length,
      recoveryP50Ms: nearestRank(recoveries, 50),
      recoveryMaxMs: recoveries.length === 0 ? null : Math.max(...recoveries),
    };
  });
}

const ms = (value: number | null) => (value === null ? '–' : value.toFixed(0));

function table(header: string[], rows: (string | number)[][]): string {
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ];
  return lines.join('\n');
}

export function renderMarkdown(results: RunResults): string {
  const workloadTable = table(
    [
      'workload',
      'workers',
      'acquisitions',
      'accepted increments',
      'final counter',
      'lost updates',
      'stale fences rejected (reads + writes)',
      'overlaps',
      'closest approach (ms)',
      'acquire errors',
    ],
    results.workloads.map((workload) => [
      workload.name,
      workload.workers,
      workload.acquisitions,
      workload.acceptedIncrements,
      workload.finalCounter,
      workload.lostUpdates,
      `${workload.staleReadsRejected + workload.staleWritesRejected} (${workload.staleReadsRejected} + ${workload.staleWritesRejected})`,
      workload.overlaps,
      workload.closestApproachMs.toFixed(2),
      Object.entries(workload.workerCounts.acquireErrors)
        .map(([code, count]) => `${code} ${count}`)
        .join(', ') || '0',
    ]),
  );
  const faultTable = table(
    [
      'fault',
      'trials',
      'kept mutual exclusion',
      'passed',
      'lock available again p50 / max (ms)',
      'counted from',
    ],
    results.faults.map((fault) => [
      fault.fault,
      fault.trials,
      `${fault.keptMutualExclusion}/${fault.trials}`,
      `${fault.passed}/${fault.trials}`,
      `${ms(fault.recoveryP50Ms)} / ${ms(fault.recoveryMaxMs)}`,
      fault.measuredFrom,
    ]),
  );
  const frozen = results.trials.filter((trial) => trial.fault === 'freeze-holder');
  const count = (key: string) => frozen.filter((trial) => trial.details[key] === true).length;
  const freezeTable = table(
    ['freeze trials', 'count'],
    [
      [
        'stale write of the frozen holder rejected by the store',
        `${count('staleWriteRejected')}/${frozen.length}`,
      ],
      [
        'lock.held false when the holder’s code ran again (it checks the clock)',
        `${count('heldFalseWhenCodeRan')}/${frozen.length}`,
      ],
      [
        'lock.signal already aborted by its own timer when the holder’s code ran again',
        `${count('signalAbortedWhenCodeRan')}/${frozen.length}`,
      ],
      [
        'lock.signal aborted before the lease ended (impossible while frozen)',
        `${count('signalAbortedBeforeLeaseEnd')}/${frozen.length}`,
      ],
    ],
  );
  const violations =
    results.violations.length === 0
      ? 'No guarantee was violated.'
      : `**${results.violations.length} violations:**\n${results.violations.map((line) => `- ${line}`).join('\n')}`;
  return [
    `## deadbolt reliability (${results.mode} run, ${results.durationS.toFixed(0)} s)`,
    '',
    workloadTable,
    '',
    faultTable,
    '',
    freezeTable,
    '',
    violations,
    '',
  ].join('\n');
}
