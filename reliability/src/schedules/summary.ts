/** What a run of the schedule checker prints: one line per schedule, then the totals. */

import type { Tally } from './protocol.js';
import type { ScheduleResult } from './run-schedule.js';

export interface RunSummary {
  mode: string;
  durationS: number;
  results: ScheduleResult[];
}

/** One schedule in a line: its seed, scenario, operations and verdict. */
export function describeSchedule(result: ScheduleResult): string {
  const { plan } = result;
  const lock = plan.primitive === 'semaphore' ? `semaphore of ${plan.limit}` : plan.primitive;
  const fair = `${Math.round(plan.mix.fairShare * 100)}% fair`;
  const scenario =
    `${plan.backend} ${lock}, TTL ${plan.ttlMs} ms, ${plan.processes} processes × ` +
    `${plan.clientsPerProcess} clients, ${fair}`;
  const faults = sum(result.faults);
  const verdict =
    result.violations.length === 0
      ? 'ok'
      : `${result.violations.length} VIOLATIONS (${describeTally(countKinds(result))})`;
  return `seed ${plan.seed}: ${scenario}; ${sum(result.operations)} operations, ${faults} faults: ${verdict}`;
}

function countKinds(result: ScheduleResult): Tally {
  const kinds: Tally = {};
  for (const violation of result.violations)
    kinds[violation.kind] = (kinds[violation.kind] ?? 0) + 1;
  return kinds;
}

function sum(tally: Tally): number {
  return Object.values(tally).reduce((total, count) => total + count, 0);
}

function describeTally(tally: Tally): string {
  return Object.entries(tally)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}

function merge(tallies: readonly Tally[]): Tally {
  const merged: Tally = {};
  for (const tally of tallies) {
    for (const [name, count] of Object.entries(tally)) merged[name] = (merged[name] ?? 0) + count;
  }
  return merged;
}

function table(title: string, tally: Tally): string {
  const rows = Object.entries(tally)
    .filter(([, count]) => count > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `| ${name} | ${count} |`);
  if (rows.length === 0) return `${title}: none`;
  return [`| ${title} | count |`, '| --- | ---: |', ...rows].join('\n');
}

/** The whole run: totals by kind, the failing seeds, and how to replay them. */
export function renderSummary(run: RunSummary): string {
  const { results } = run;
  const operations = merge(results.map((result) => result.operations));
  const byBackend = merge(results.map((result) => ({ [result.plan.backend]: 1 })));
  const failing = results.filter((result) => result.violations.length > 0);
  const violations = merge(results.map(countKinds));
  const lines = [
    `## deadbolt schedule checker (${run.mode} run, ${run.durationS.toFixed(0)} s)`,
    '',
    `Schedules run: ${results.length} (${describeTally(byBackend)}); operations: ${sum(operations)}; ` +
      `grants on the timeline: ${results.reduce((total, result) => total + result.grants, 0)}.`,
    '',
    table('operation: outcome', operations),
    '',
    table('fault', merge(results.map((result) => result.faults))),
    '',
    table('check: verdict', merge(results.map((result) => result.checks))),
    '',
    table('violation', violations),
    '',
  ];
  if (failing.length === 0) {
    lines.push('No invariant was violated.', '');
    return lines.join('\n');
  }
  lines.push(`**${failing.length} failing schedules:**`, '');
  for (const result of failing) {
    const first = result.violations[0];
    lines.push(`- seed ${result.plan.seed}: ${describeTally(countKinds(result))}`);
    if (first !== undefined) lines.push(`  - first: ${first.kind}: ${first.text}`);
  }
  lines.push(
    '',
    'Replay a schedule with `pnpm check:schedules --seed <seed>` (add `--repeat 5` to run it ' +
      'several times). The seed fixes the plan (scenario, faults, each client’s operations); ' +
      'timing-dependent interleavings replay approximately, so a replay may need a few runs.',
    '',
  );
  return lines.join('\n');
}
