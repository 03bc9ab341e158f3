/**
 * Reads a results file and prints each target of issue 7 as met or missed, with the numbers.
 * Never fails the process: speed is reported, not asserted (`node dist/check-targets.js [file]`).
 */
import { pathToFileURL } from 'node:url';
import { rawFenced } from './contenders/raw.js';
import { formatNumber } from './report.js';
import { LATEST, maxOf, medianOf, type Results, readResults } from './results.js';

/** One target for one contender. */
export interface TargetCheck {
  contender: string;
  target: string;
  /** Undefined when the figures needed are missing. */
  met: boolean | undefined;
  detail: string;
}

const n = (value: number | undefined, digits = 0) =>
  value === undefined ? 'n/a' : formatNumber(value, digits);

/**
 * The best peer in `scenario` by `metric`: among peers that finished (no timeouts in any
 * repetition), falling back to every peer when none did.
 */
function bestPeer(
  results: Results,
  scenario: string,
  metric: string,
  better: 'higher' | 'lower',
): { label: string; value: number } | undefined {
  const peers = results.contenders.filter((contender) => contender.role === 'peer');
  const finished = peers.filter((peer) => maxOf(results, scenario, peer.id, 'timeouts') === 0);
  let best: { label: string; value: number } | undefined;
  for (const peer of finished.length > 0 ? finished : peers) {
    const value = medianOf(results, scenario, peer.id, metric);
    if (value === undefined || Number.isNaN(value)) continue;
    if (best === undefined || (better === 'higher' ? value > best.value : value < best.value)) {
      best = { label: peer.label, value };
    }
  }
  return best;
}

/** Every target of issues 7 and 18, for every deadbolt contender on Redis. */
export function checkTargets(results: Results): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const rawPairs = medianOf(results, 'uncontended', 'raw', 'pairsPerSec');
  const peerOwnerChanges = bestPeer(results, 'contended', 'ownerChangesPerSec', 'higher');
  const peerP99 = bestPeer(results, 'contended', 'waitP99Ms', 'lower');
  const peerAcquisitions = bestPeer(results, 'contended', 'acquisitionsPerSec', 'higher');
  const deadbolts = results.contenders.filter(
    (contender) => contender.role === 'deadbolt' && contender.usesRedis,
  );
  for (const { id, label } of deadbolts) {
    const add = (target: string, met: boolean | undefined, detail: string) =>
      checks.push({ contender: label, target, met, detail });
    const defined = (...values: (number | undefined)[]) =>
      values.every((value) => value !== undefined && !Number.isNaN(value));

    const pairs = medianOf(results, 'uncontended', id, 'pairsPerSec');
    // "raw" is the hand-written lock with the same client (issue 7): deadbolt on node-redis is
    // judged against the raw lock on node-redis, which that client itself runs slower.
    const ownRaw = results.contenders.find(
      (contender) =>
        contender.role === 'raw' && contender.id !== 'raw' && id.endsWith(contender.id.slice(4)),
    );
    const ownRawPairs = ownRaw
      ? medianOf(results, 'uncontended', ownRaw.id, 'pairsPerSec')
      : rawPairs;
    const ownRawLabel = ownRaw?.label ?? 'raw';
    add(
      'uncontended pairs/s ≥ 0.9× raw on the same client',
      defined(pairs, ownRawPairs) ? pairs! >= 0.9 * ownRawPairs! : undefined,
      `${n(pairs)} vs ${ownRawLabel} ${n(ownRawPairs)} (${n(defined(pairs, ownRawPairs) ? pairs! / ownRawPairs! : undefined, 2)}×)`,
    );
    // Not a target: against the raw lock on ioredis, for a client other than ioredis.
    if (ownRaw && defined(pairs, rawPairs)) {
      add(
        '(reference) uncontended pairs/s vs raw on ioredis',
        undefined,
        `${n(pairs)} vs ${n(rawPairs)} (${n(pairs! / rawPairs!, 2)}×)`,
      );
    }

    // Not a target either: against the least a lock with fencing tokens runs on the server.
    const fencedPairs = medianOf(results, 'uncontended', rawFenced.id, 'pairsPerSec');
    if (defined(pairs, fencedPairs)) {
      add(
        `(reference) uncontended pairs/s vs ${rawFenced.label}`,
        undefined,
        `${n(pairs)} vs ${n(fencedPairs)} (${n(pairs! / fencedPairs!, 2)}×)`,
      );
    }

    const changes = medianOf(results, 'contended', id, 'ownerChangesPerSec');
    add(
      'contended owner changes/s ≥ 10× best peer',
      defined(changes, peerOwnerChanges?.value)
        ? changes! >= 10 * peerOwnerChanges!.value
        : undefined,
      `${n(changes)} vs ${n(peerOwnerChanges?.value)} (${peerOwnerChanges?.label ?? 'no peer'}): ` +
        `${n(defined(changes, peerOwnerChanges?.value) ? changes! / peerOwnerChanges!.value : undefined, 1)}×`,
    );

    const p99 = medianOf(results, 'contended', id, 'waitP99Ms');
    add(
      'contended p99 wait ≤ best peer / 10',
      defined(p99, peerP99?.value) ? p99! <= peerP99!.value / 10 : undefined,
      `${n(p99, 1)} ms vs ${n(peerP99?.value, 1)} ms (${peerP99?.label ?? 'no peer'}): ` +
        `${n(defined(p99, peerP99?.value) ? peerP99!.value / p99! : undefined, 1)}× lower`,
    );

    const fairness = medianOf(results, 'contended', id, 'fairness');
    add(
      'contended fairness ≤ 2',
      defined(fairness) ? fairness! <= 2 : undefined,
      `max/min grants per worker ${n(fairness, 2)}`,
    );

    const acquisitions = medianOf(results, 'contended', id, 'acquisitionsPerSec');
    add(
      'contended acq/s ≥ 0.8× best peer',
      defined(acquisitions, peerAcquisitions?.value)
        ? acquisitions! >= 0.8 * peerAcquisitions!.value
        : undefined,
      `${n(acquisitions)} vs ${n(peerAcquisitions?.value)} (${peerAcquisitions?.label ?? 'no peer'}): ` +
        `${n(defined(acquisitions, peerAcquisitions?.value) ? acquisitions! / peerAcquisitions!.value : undefined, 2)}×`,
    );

    const processFairness = medianOf(results, 'multiprocess', id, 'fairness');
    add(
      '4-process fairness ≤ 2',
      defined(processFairness) ? processFairness! <= 2 : undefined,
      `max/min grants per worker ${n(processFairness, 2)}`,
    );

    const handoff = medianOf(results, 'handoff', id, 'handoffP50Rtts');
    const handoffMs = medianOf(results, 'handoff', id, 'handoffP50Ms');
    const rtt = medianOf(results, 'handoff', id, 'pingRttMs');
    const idleRtt = medianOf(results, 'handoff', id, 'idlePingRttMs');
    add(
      'release-to-wake p50 ≤ 2 RTTs',
      defined(handoff) ? handoff! <= 2 : undefined,
      `${n(handoffMs, 3)} ms = ${n(handoff, 1)} RTTs (PING ${n(rtt, 3)} ms back to back, ` +
        `${n(idleRtt, 3)} ms after a pause)`,
    );

    const violations = ['contended', 'multiprocess'].map((scenario) =>
      maxOf(results, scenario, id, 'violations'),
    );
    add(
      'zero violations',
      defined(...violations) ? violations.every((count) => count === 0) : undefined,
      `most in one repetition: ${violations.map((count) => n(count)).join(' (1 process), ')} (4 processes)`,
    );

    // Issue 18: the cost of each lock, when the lock is free.
    const peers = results.contenders.filter((contender) => contender.role === 'peer');
    const slowerThan = peers.flatMap((peer) => {
      const value = medianOf(results, 'uncontended', peer.id, 'pairsPerSec');
      return defined(pairs, value) && value! > pairs! ? [`${peer.label} ${n(value)}`] : [];
    });
    add(
      'uncontended pairs/s ≥ every peer (issue 18)',
      defined(pairs) && peers.length > 0 ? slowerThan.length === 0 : undefined,
      slowerThan.length === 0
        ? `${n(pairs)}, ahead of every peer`
        : `${n(pairs)} vs ${slowerThan.join(', ')}`,
    );
    add(
      'contended acq/s ≥ 1.0× best peer (issue 18)',
      defined(acquisitions, peerAcquisitions?.value)
        ? acquisitions! >= peerAcquisitions!.value
        : undefined,
      `${n(defined(acquisitions, peerAcquisitions?.value) ? acquisitions! / peerAcquisitions!.value : undefined, 2)}× ${peerAcquisitions?.label ?? 'no peer'}`,
    );
    const saturated = medianOf(results, 'saturation', id, 'pairsPerSec');
    const saturatedRaw = medianOf(results, 'saturation', ownRaw?.id ?? 'raw', 'pairsPerSec');
    const serverMicros = medianOf(results, 'saturation', id, 'serverMicrosPerPair');
    const rawServerMicros = medianOf(
      results,
      'saturation',
      ownRaw?.id ?? 'raw',
      'serverMicrosPerPair',
    );
    add(
      'saturation pairs/s ≥ 0.8× raw (issue 18)',
      defined(saturated, saturatedRaw) ? saturated! >= 0.8 * saturatedRaw! : undefined,
      `${n(saturated)} vs ${ownRawLabel} ${n(saturatedRaw)} (${n(defined(saturated, saturatedRaw) ? saturated! / saturatedRaw! : undefined, 2)}×); ` +
        `server CPU ${n(serverMicros, 1)} vs ${n(rawServerMicros, 1)} µs/pair`,
    );

    const extra = maxOf(results, 'cost', id, 'extraConnectionsFor100Waiters');
    add(
      '100 waiters use ≤ 1 extra connection',
      defined(extra) ? extra! <= 1 : undefined,
      `${n(extra)} extra (most in one repetition)`,
    );
  }
  return checks;
}

/** Overlaps seen for any contender at all: a lock that lets two holders in is worth knowing about. */
export function violationsAnywhere(results: Results): string[] {
  const found: string[] = [];
  for (const contender of results.contenders) {
    for (const scenario of ['contended', 'multiprocess']) {
      const most = maxOf(results, scenario, contender.id, 'violations');
      if (most !== undefined && most > 0) found.push(`${contender.label} in ${scenario}: ${most}`);
    }
  }
  return found;
}

/** The checks as text, one line each. */
export function formatTargets(results: Results): string {
  const lines = [
    `## Targets of issues 7 and 18 (${results.meta.mode} run, ${results.meta.date})`,
    '',
  ];
  for (const check of checkTargets(results)) {
    const verdict = check.target.startsWith('(reference)')
      ? 'info  '
      : check.met === undefined
        ? 'n/a   '
        : check.met
          ? 'met   '
          : 'MISSED';
    lines.push(`- ${verdict} ${check.contender}: ${check.target}: ${check.detail}`);
  }
  const violations = violationsAnywhere(results);
  lines.push(
    '',
    violations.length === 0
      ? 'No contender showed a mutual-exclusion violation.'
      : `Violations (most in one repetition): ${violations.join('; ')}`,
  );
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = process.argv[2] ?? LATEST;
  readResults(path)
    .then((results) => process.stdout.write(formatTargets(results)))
    .catch((error: unknown) => {
      // Reporting only: a missing file is said, never a failure.
      console.error(
        `[bench] cannot read ${path}: ${error instanceof Error ? error.message : error}`,
      );
    });
}
