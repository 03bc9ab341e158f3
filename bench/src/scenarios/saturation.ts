import { nowMs, sleepUntil } from '../clock.js';
import type { Contender, LockClient } from '../contenders/index.js';
import { info } from '../redis-info.js';
import { Child } from './multiprocess.js';
import type { Outcome, RunContext, Scenario } from './types.js';

/** What one child runs: `loops` acquire → release loops, each on a key of its own. */
export interface SaturationPlan {
  contender: string;
  keyPrefix: string;
  loops: number;
  startAt: number;
  windowStart: number;
  windowEnd: number;
}

/** What one child did inside the window. */
export interface SaturationTally {
  /** Pairs whose release resolved inside the window. */
  pairs: number;
  /** Acquisitions that failed (gave up, errored) at any time. */
  failures: number;
  /** The child's CPU time (user + system) over the window, in µs. */
  cpuMicros: number;
}

/**
 * Runs in a child: every loop takes its own key, acquires and releases it back to back from
 * `startAt` until `windowEnd`, and the pairs that end inside the window are counted.
 */
export async function runSaturation(
  client: LockClient,
  plan: SaturationPlan,
): Promise<SaturationTally> {
  const tally: SaturationTally = { pairs: 0, failures: 0, cpuMicros: 0 };
  await sleepUntil(plan.startAt);
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const cpuTimer = setTimeout(
    () => {
      cpuAtStart = process.cpuUsage();
    },
    Math.max(0, plan.windowStart - nowMs()),
  );
  const loop = async (index: number) => {
    const key = `${plan.keyPrefix}:${index}`;
    while (nowMs() < plan.windowEnd) {
      try {
        const release = await client.acquire(key);
        await release();
        const done = nowMs();
        if (done >= plan.windowStart && done < plan.windowEnd) tally.pairs += 1;
      } catch {
        tally.failures += 1;
      }
    }
  };
  const loops = Array.from({ length: plan.loops }, (_, index) => loop(index));
  await sleepUntil(plan.windowEnd);
  const cpu = process.cpuUsage(cpuAtStart);
  tally.cpuMicros = cpuAtStart === undefined ? Number.NaN : cpu.user + cpu.system;
  clearTimeout(cpuTimer);
  await Promise.all(loops);
  return tally;
}

/** The server's CPU time so far (user + system, main thread and children), in µs. */
async function serverCpuMicros(context: RunContext): Promise<number> {
  const cpu = await info(context.admin, 'cpu');
  return (Number(cpu.get('used_cpu_user')) + Number(cpu.get('used_cpu_sys'))) * 1e6;
}

let children: Child[] = [];

/**
 * Scenario 6: how many lock pairs one Redis serves when clients keep it busy, and what each costs
 * it. Every contender runs alone, one after another.
 */
export const saturation: Scenario = {
  id: 'saturation',
  title: '6. Saturation: 4 processes × 64 concurrent acquire + release loops, distinct keys',
  description:
    '4 child processes, each with one client of the contender running 64 concurrent loops that acquire and ' +
    'release a key of their own back to back (no contention: every lock is free when asked). Contenders ' +
    'run in turn, in short windows, round after round in rotating order. Pairs/s: pairs completed in the ' +
    'windows across all processes. Server CPU µs/pair: INFO cpu (used_cpu_user + ' +
    'used_cpu_sys) of the redis-server over the window, divided by the pairs; client CPU µs/pair: the four ' +
    "processes' CPU time over the window, divided by the pairs. One redis-server runs commands on one " +
    'thread, so 1e6 / server µs per pair bounds what one server can serve.',
  columns: [
    { metric: 'pairsPerSec', header: 'pairs/s', digits: 0 },
    { metric: 'serverMicrosPerPair', header: 'server CPU µs/pair', digits: 1 },
    { metric: 'clientMicrosPerPair', header: 'client CPU µs/pair', digits: 1 },
    { metric: 'failures', header: 'failed acquisitions', digits: 0 },
  ],
  async setup(context: RunContext) {
    children = Array.from({ length: context.config.saturation.processes }, () => new Child());
  },
  async repetition(contenders, context, repetition) {
    const { loops, warmupMs, windowMs, rounds } = context.config.saturation;
    const outcomes = new Map<string, Outcome>();
    const measured = contenders.filter((contender) => contender.usesRedis);
    for (const contender of contenders) {
      if (!contender.usesRedis) {
        outcomes.set(contender.id, { skipped: 'not on Redis: no Redis to saturate' });
      }
    }
    const prefixOf = (contender: Contender) =>
      `${context.runId}:saturation:${contender.id}:${repetition}`;
    for (const contender of measured) {
      await Promise.all(
        children.map((child) =>
          child.request({
            type: 'open-saturation',
            contender: contender.id,
            redisUrl: context.redis.url,
            warmKey: `${prefixOf(contender)}:warm`,
          }),
        ),
      );
    }
    const sums = new Map(
      measured.map((contender) => [
        contender.id,
        { pairs: 0, serverMicros: 0, clientMicros: 0, failures: 0, windows: 0 },
      ]),
    );
    try {
      // Short windows, contenders in turn and in rotating order, round after round: a slowdown
      // of the shared machine then lands on every contender alike.
      for (let round = 0; round < rounds; round++) {
        const shift = (round + repetition) % measured.length;
        for (const contender of [...measured.slice(shift), ...measured.slice(0, shift)]) {
          const sum = sums.get(contender.id)!;
          // Far enough ahead that every child has the plan before it starts.
          const startAt = nowMs() + 50;
          const windowStart = startAt + warmupMs;
          const windowEnd = windowStart + windowMs;
          const running = Promise.all(
            children.map((child, index) =>
              child.request({
                type: 'saturate',
                plan: {
                  contender: contender.id,
                  keyPrefix: `${prefixOf(contender)}:r${round}:p${index}`,
                  loops,
                  startAt,
                  windowStart,
                  windowEnd,
                },
              }),
            ),
          );
          await sleepUntil(windowStart);
          const cpuBefore = await serverCpuMicros(context);
          const measuredFrom = nowMs();
          await sleepUntil(windowEnd);
          const cpuAfter = await serverCpuMicros(context);
          const measuredFor = nowMs() - measuredFrom;
          const tallies = (await running).flatMap((reply) =>
            reply.type === 'tally' ? [reply.tally] : [],
          );
          sum.pairs += tallies.reduce((total, tally) => total + tally.pairs, 0);
          sum.clientMicros += tallies.reduce((total, tally) => total + tally.cpuMicros, 0);
          sum.failures += tallies.reduce((total, tally) => total + tally.failures, 0);
          // The server's CPU is read a little after the window's edges (an INFO round trip):
          // scaled to the window, so a slow INFO does not charge time outside it.
          sum.serverMicros += ((cpuAfter - cpuBefore) * windowMs) / measuredFor;
          sum.windows += 1;
        }
      }
    } finally {
      await Promise.all(children.map((child) => child.request({ type: 'close-saturation' })));
      await context.settle();
    }
    for (const [id, sum] of sums) {
      outcomes.set(id, {
        metrics: {
          pairsPerSec: (sum.pairs * 1000) / (windowMs * sum.windows),
          serverMicrosPerPair: sum.serverMicros / sum.pairs,
          clientMicrosPerPair: sum.clientMicros / sum.pairs,
          failures: sum.failures,
        },
      });
    }
    return outcomes;
  },
  async teardown() {
    await Promise.all(children.map((child) => child.exit()));
    children = [];
  },
};
