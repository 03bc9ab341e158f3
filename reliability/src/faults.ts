/**
 * The fault trials. Each injects one fault while the workload runs and returns what it saw: did
 * mutual exclusion hold around the fault, and how soon after it could someone take the lock again.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultProxy, RedisServer } from '@deadbolt/testing';
import { nowMs, sleep } from './clock.js';
import type { FromWorker } from './protocol.js';
import type { Workload } from './workload.js';

export type FaultId =
  | 'kill-holder'
  | 'freeze-holder'
  | 'redis-restart-empty'
  | 'redis-restart-with-data'
  | 'proxy-latency'
  | 'proxy-drop'
  | 'proxy-blackhole'
  | 'quorum-minority-then-majority';

export interface TrialResult {
  fault: FaultId;
  trial: number;
  /** Every guarantee this trial checks held. */
  ok: boolean;
  /** No two sections overlapped around the fault (each bounded by its lease). */
  keptMutualExclusion: boolean;
  /** Time from the fault's reference point (see each fault) to the next grant, ms; null if none came. */
  recoveryMs: number | null;
  /** Why `ok` is false, in words. */
  problems: string[];
  details: Record<string, number | boolean | string | null>;
}

export interface FaultSettings {
  ttlMs: number;
  /** How long Redis stays down in a restart trial. */
  redisDownMs: number;
  latencyMs: number;
  latencyForMs: number;
  blackholeMs: number;
  /** Each phase of a quorum trial (minority down, majority down) lasts this long. */
  quorumWindowMs: number;
  /**
   * Allowance on top of the TTL for a waiter to notice a free lock and be granted: its backoff
   * timer (bounded by the server's retry hint), a round trip, and this 2-core machine's scheduling.
   */
  grantSlackMs: number;
}

/** Runs `body` and checks mutual exclusion over its span, widened by a TTL on each side. */
async function trial(
  fault: FaultId,
  index: number,
  workload: Workload,
  ttlMs: number,
  body: (problems: string[], details: TrialResult['details']) => Promise<number | null>,
): Promise<TrialResult> {
  const problems: string[] = [];
  const details: TrialResult['details'] = {};
  const from = nowMs() - ttlMs;
  let recoveryMs: number | null = null;
  try {
    recoveryMs = await body(problems, details);
  } catch (error) {
    problems.push(`trial failed: ${(error as Error).message}`);
  }
  // Sections that were open during the fault may end up to a TTL later.
  await sleep(Math.min(ttlMs, 500));
  const overlaps = workload.overlaps(from, nowMs());
  for (const overlap of overlaps) {
    problems.push(
      `workers ${overlap.first.worker} (fence ${overlap.first.fence}) and ${overlap.second.worker} ` +
        `(fence ${overlap.second.fence}) overlapped by ${overlap.overlapMs.toFixed(2)} ms`,
    );
  }
  if (recoveryMs === null && !problems.some((problem) => problem.startsWith('no grant'))) {
    problems.push('no grant after the fault');
  }
  return {
    fault,
    trial: index,
    ok: problems.length === 0,
    keptMutualExclusion: overlaps.length === 0,
    recoveryMs,
    problems,
    details,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** How long after a fault's end the workload may take to be granted again. */
const RECOVERY_LIMIT_MS = 15_000;

/**
 * Milliseconds from `since` to the next grant; null, with a problem naming `event`, when none
 * comes within {@link RECOVERY_LIMIT_MS}.
 */
async function recoveryAfter(
  workload: Workload,
  since: number,
  problems: string[],
  event: string,
): Promise<number | null> {
  const next = await workload.waitForGrantAfter(since, RECOVERY_LIMIT_MS);
  if (next === undefined) {
    problems.push(`no grant within ${RECOVERY_LIMIT_MS / 1000} s of ${event}`);
    return null;
  }
  return next - since;
}

/**
 * SIGKILLs redis-server and starts it again after `settings.redisDownMs`, without its data when
 * `empty`; records how long it was down and returns when it answers again.
 */
async function restartRedis(
  redis: RedisServer,
  settings: FaultSettings,
  details: TrialResult['details'],
  { empty }: { empty: boolean },
): Promise<number> {
  await redis.kill();
  const downAt = nowMs();
  if (empty) forgetData(redis);
  await sleep(settings.redisDownMs);
  await redis.restart();
  const upAt = nowMs();
  details.downMs = round(upAt - downAt);
  return upAt;
}

/** SIGKILL a worker inside its critical section: its lease must run out, and someone get the lock. */
export function killHolder(workload: Workload, settings: FaultSettings, index: number) {
  return trial('kill-holder', index, workload, settings.ttlMs, async (problems, details) => {
    const victim = workload.pickVictim();
    const stalled = await workload.stall(
      victim,
      { trial: index, mode: 'kill', holdMs: 0, resumeOnMessage: false },
      10_000,
    );
    const killedAt = await workload.kill(victim);
    const next = await workload.waitForGrantAfter(killedAt, settings.ttlMs * 5, victim);
    await workload.spawn();
    if (next === undefined) {
      problems.push(`no grant within ${settings.ttlMs * 5} ms of the kill`);
      return null;
    }
    const recovery = next - killedAt;
    details.leaseLeftAtKillMs = round(stalled.leaseEnd - killedAt);
    details.grantAfterLeaseEndMs = round(next - stalled.leaseEnd);
    if (recovery > settings.ttlMs + settings.grantSlackMs) {
      problems.push(
        `next grant ${recovery.toFixed(0)} ms after the kill: more than the TTL (${settings.ttlMs}) + ${settings.grantSlackMs} ms`,
      );
    }
    return recovery;
  });
}

/**
 * SIGSTOP a worker inside its critical section until well past its lease and until another
 * holder has written, then SIGCONT it: it writes anyway, on purpose, and the store must refuse
 * its fence. Odd trials wake the worker with an IPC message (I/O first), even ones with its own
 * timer, to see whether `lock.signal` has aborted by the time its code runs either way.
 */
export function freezeHolder(workload: Workload, settings: FaultSettings, index: number) {
  return trial('freeze-holder', index, workload, settings.ttlMs, async (problems, details) => {
    const victim = workload.pickVictim();
    const resumeOnMessage = index % 2 === 1;
    const stalled = await workload.stall(
      victim,
      { trial: index, mode: 'freeze', holdMs: settings.ttlMs, resumeOnMessage },
      10_000,
    );
    const pid = workload.pid(victim);
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = nowMs();
    const next = await workload.waitForGrantAfter(stoppedAt, settings.ttlMs * 5, victim);
    const deadline = nowMs() + settings.ttlMs * 5;
    while (
      !(
        nowMs() > stalled.leaseEnd + settings.ttlMs / 4 &&
        workload.store.lastWriteFence > stalled.fence
      ) &&
      nowMs() < deadline
    ) {
      await sleep(10);
    }
    const reported = workload.next(
      (message, from) =>
        from === victim && message.type === 'frozen-report' && message.trial === index,
      10_000,
    );
    const resumedAt = nowMs();
    process.kill(pid, 'SIGCONT');
    if (resumeOnMessage) workload.send(victim, { type: 'resume', trial: index });
    const report = (await reported) as Extract<FromWorker, { type: 'frozen-report' }>;
    details.wokenBy = resumeOnMessage ? 'message' : 'timer';
    details.frozenMs = round(resumedAt - stoppedAt);
    details.frozenPastLeaseMs = round(resumedAt - stalled.leaseEnd);
    details.signalAbortedBeforeLeaseEnd =
      report.abortedAt !== null && report.abortedAt <= report.leaseEnd;
    details.signalAbortedAfterLeaseEndMs =
      report.abortedAt === null ? null : round(report.abortedAt - report.leaseEnd);
    details.signalAbortedWhenCodeRan = report.signalAbortedAtWrite;
    details.heldFalseWhenCodeRan = !report.heldAtWrite;
    details.staleWriteRejected = !report.writeAccepted;
    if (report.writeAccepted) problems.push('the frozen holder’s write was accepted');
    if (report.heldAtWrite)
      problems.push('lock.held was still true after the freeze, past the lease');
    if (next === undefined) {
      problems.push(`no grant within ${settings.ttlMs * 5} ms of the freeze`);
      return null;
    }
    const recovery = next - stoppedAt;
    if (recovery > settings.ttlMs + settings.grantSlackMs) {
      problems.push(
        `next grant ${recovery.toFixed(0)} ms after the freeze: more than the TTL (${settings.ttlMs}) + ${settings.grantSlackMs} ms`,
      );
    }
    return recovery;
  });
}

/** Deletes what an appendonly server would load, so its next start is empty. */
function forgetData(redis: RedisServer): void {
  if (redis.dir === undefined) throw new Error('the server has no directory of its own');
  rmSync(join(redis.dir, 'appendonlydir'), { recursive: true, force: true });
  rmSync(join(redis.dir, 'dump.rdb'), { force: true });
}

/**
 * SIGKILL redis-server and start it again empty after a while; recovery counts from when it
 * answers again.
 */
export function redisRestartEmpty(
  workload: Workload,
  redis: RedisServer,
  settings: FaultSettings,
  index: number,
) {
  return trial(
    'redis-restart-empty',
    index,
    workload,
    settings.ttlMs,
    async (problems, details) => {
      const upAt = await restartRedis(redis, settings, details, { empty: true });
      details.keysAfterRestart = Number(await redis.call('DBSIZE'));
      return recoveryAfter(workload, upAt, problems, 'the restart');
    },
  );
}

/** The lease a holder takes through a restart with data, in TTLs: a restart under load fits. */
const RESTART_LEASE_TTLS = 10;

/**
 * A worker holds the lock (half a TTL) while redis-server is SIGKILLed and started again with its
 * append-only file: the lease must survive, so no one else gets the lock before that holder
 * releases it, and its release must find the lease. The holder first extends its lease to
 * {@link RESTART_LEASE_TTLS} TTLs: on a loaded machine the restart and the client's reconnection
 * took longer than the rest of a one-TTL lease, which then ran out as it should, and the trial
 * failed on a lease the library rightly let expire.
 */
export function redisRestartWithData(
  workload: Workload,
  redis: RedisServer,
  settings: FaultSettings,
  index: number,
) {
  return trial(
    'redis-restart-with-data',
    index,
    workload,
    settings.ttlMs,
    async (problems, details) => {
      const victim = workload.pickVictim();
      const reported = workload.next(
        (message, from) =>
          from === victim && message.type === 'hold-report' && message.trial === index,
        settings.ttlMs * RESTART_LEASE_TTLS * 2,
      );
      const stalled = await workload.stall(
        victim,
        {
          trial: index,
          mode: 'hold',
          holdMs: settings.ttlMs / 2,
          leaseMs: settings.ttlMs * RESTART_LEASE_TTLS,
          resumeOnMessage: false,
        },
        10_000,
      );
      const upAt = await restartRedis(redis, settings, details, { empty: false });
      details.leaseLeftWhenUpMs = round(stalled.leaseEnd - upAt);
      const report = (await reported) as Extract<FromWorker, { type: 'hold-report' }>;
      details.holderReleasedItsLease = report.released;
      details.holderStillHeld = report.held;
      if (!report.held) problems.push('the holder lost its lease across the restart');
      if (!report.released) problems.push('the holder’s release did not find its lease');
      const otherGrant = workload.firstGrantAfter(stalled.at, victim);
      const recovery = await recoveryAfter(workload, upAt, problems, 'the restart');
      if (otherGrant !== undefined) details.otherGrantAfterStallMs = round(otherGrant - stalled.at);
      return recovery;
    },
  );
}

/** Adds latency on every connection for a while: the lock must keep working, only slower. */
export function proxyLatency(
  workload: Workload,
  proxy: FaultProxy,
  settings: FaultSettings,
  index: number,
) {
  return trial('proxy-latency', index, workload, settings.ttlMs, async (problems, details) => {
    const from = nowMs();
    proxy.setLatency(settings.latencyMs);
    await sleep(settings.latencyForMs);
    proxy.setLatency(0);
    const to = nowMs();
    const during = workload.grantsBetween(from, to);
    details.grantsDuringLatency = during;
    details.errorsDuringLatency = JSON.stringify(workload.errorsBetween(from, to));
    if (during === 0) problems.push('no grant while latency was added');
    return recoveryAfter(workload, to, problems, 'the end of the latency');
  });
}

/** Resets every client connection at once: clients reconnect and the lock carries on. */
export function proxyDrop(
  workload: Workload,
  proxy: FaultProxy,
  settings: FaultSettings,
  index: number,
) {
  return trial('proxy-drop', index, workload, settings.ttlMs, async (problems, details) => {
    details.connectionsDropped = proxy.connections;
    const at = nowMs();
    proxy.dropConnections();
    const recovery = await recoveryAfter(workload, at, problems, 'the reset');
    details.errorsAfterDrop = JSON.stringify(workload.errorsBetween(at, nowMs()));
    return recovery;
  });
}

/** Holds all traffic for longer than a TTL, then lets it through: leases run out meanwhile. */
export function proxyBlackhole(
  workload: Workload,
  proxy: FaultProxy,
  settings: FaultSettings,
  index: number,
) {
  return trial('proxy-blackhole', index, workload, settings.ttlMs, async (problems, details) => {
    const from = nowMs();
    proxy.blackhole();
    await sleep(settings.blackholeMs);
    details.heldBytes = proxy.heldBytes;
    proxy.heal();
    const healedAt = nowMs();
    details.grantsDuringBlackhole = workload.grantsBetween(from + 5, healedAt);
    return recoveryAfter(workload, healedAt, problems, 'the heal');
  });
}

/**
 * Over quorum() of five servers: kill two (acquisitions must go on), then a third (every acquire
 * must fail with QuorumError, and no one be granted), then restart the three with their data
 * (acquisitions must resume). Recovery counts from when the three answer again.
 */
export function quorumFaults(
  workload: Workload,
  servers: readonly RedisServer[],
  settings: FaultSettings,
  index: number,
) {
  return trial(
    'quorum-minority-then-majority',
    index,
    workload,
    settings.ttlMs,
    async (problems, details) => {
      const pick = (offset: number) => servers[(index + offset) % servers.length] as RedisServer;
      const down = [pick(0), pick(1), pick(2)];
      await Promise.all([down[0]?.kill(), down[1]?.kill()]);
      // Requests in flight when the servers died settle first.
      await sleep(100);
      const minorityFrom = nowMs();
      await sleep(settings.quorumWindowMs);
      const minorityTo = nowMs();
      details.grantsWithMinorityDown = workload.grantsBetween(minorityFrom, minorityTo);
      if (details.grantsWithMinorityDown === 0) {
        problems.push('no grant while only a minority (2 of 5) was down');
      }

      await down[2]?.kill();
      // A section granted just before the third server died may still be reported; wait it out.
      await sleep(300);
      const majorityFrom = nowMs();
      await sleep(settings.quorumWindowMs);
      const majorityTo = nowMs();
      const granted = workload.grantsBetween(majorityFrom, majorityTo);
      const errors = workload.errorsBetween(majorityFrom, majorityTo);
      details.grantsWithMajorityDown = granted;
      details.quorumErrorsWithMajorityDown = errors.QUORUM ?? 0;
      details.otherErrorsWithMajorityDown = JSON.stringify(
        Object.fromEntries(Object.entries(errors).filter(([code]) => code !== 'QUORUM')),
      );
      if (granted > 0) problems.push(`${granted} grants while a majority (3 of 5) was down`);
      if ((errors.QUORUM ?? 0) === 0) {
        problems.push('no QuorumError while a majority was down');
      }

      await Promise.all(down.map((server) => server.restart()));
      return recoveryAfter(workload, nowMs(), problems, 'bringing the servers back');
    },
  );
}
