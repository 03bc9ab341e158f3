/**
 * `pnpm check:schedules [--quick] [--ops n | --seconds n] [--seed n …] [--repeat k] [--out file]`:
 * the randomized fault-schedule checker. Runs seeded schedules (client processes on one lock of
 * the memory backend, a real redis-server or a quorum, with faults at random points) until the
 * budget is spent, prints what it saw and the seed of every failing schedule, writes JSON
 * (reliability/results/schedules-<mode>.json) and exits 1 on any violation.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type FaultProxy,
  type RedisServer,
  startFaultProxy,
  startRedis,
  startRedisServers,
} from '@deadbolt/testing';
import { nowMs } from '../clock.js';
import { planSchedule, QUORUM_MEMBERS } from './plan.js';
import { type Infrastructure, runSchedule, type ScheduleResult } from './run-schedule.js';
import { describeSchedule, renderSummary } from './summary.js';

/** The full run's floor: operations across every kind of schedule and fault. */
const FULL_OPERATIONS = 100_000;
/** The quick run starts no schedule after this many seconds (one lasts up to ~8 s with setup). */
const QUICK_SECONDS = 40;

const USAGE = `pnpm check:schedules [--quick] [--ops n | --seconds n] [--seed n ...] [--repeat k] [--out file]
  (default)     random schedules until ${FULL_OPERATIONS} operations have run
  --quick       random schedules for ${QUICK_SECONDS} s (what CI runs)
  --ops n       random schedules until n operations have run
  --seconds n   random schedules for n seconds
  --seed n      replay the schedule of seed n (repeatable); interleavings replay approximately
  --repeat k    run each --seed schedule k times`;

function log(message: string): void {
  process.stderr.write(`[schedules ${process.uptime().toFixed(1)} s] ${message}\n`);
}

/** Starts each kind of server the first time a schedule needs it, and stops them all at the end. */
function lazyInfrastructure(): Infrastructure & { stop(): Promise<void> } {
  let redis: Promise<{ server: RedisServer; proxy: FaultProxy }> | undefined;
  let members: Promise<RedisServer[]> | undefined;
  return {
    redis: () => {
      redis ??= startRedis().then(async (server) => ({
        server,
        proxy: await startFaultProxy(server),
      }));
      return redis;
    },
    members: () => {
      members ??= startRedisServers(QUORUM_MEMBERS);
      return members;
    },
    stop: async () => {
      const started = await redis;
      await started?.proxy.close();
      await started?.server.stop();
      await Promise.all((await members)?.map((member) => member.stop()) ?? []);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      ops: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string', multiple: true },
      repeat: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const seeds = (values.seed ?? []).map(Number);
  const mode = seeds.length > 0 ? 'replay' : values.quick ? 'quick' : 'full';
  // Random schedules run until the operations are reached or the time is up, whichever first.
  let minOperations = 0;
  if (values.ops !== undefined) minOperations = Number(values.ops);
  else if (mode === 'full' && values.seconds === undefined) minOperations = FULL_OPERATIONS;
  let seconds = Number.POSITIVE_INFINITY;
  if (values.seconds !== undefined) seconds = Number(values.seconds);
  else if (mode === 'quick') seconds = QUICK_SECONDS;
  const repeat = Number(values.repeat ?? 1);
  if ([...seeds, minOperations, seconds, repeat].some((value) => Number.isNaN(value))) {
    console.error(USAGE);
    process.exit(2);
  }

  const infrastructure = lazyInfrastructure();
  const began = nowMs();
  const results: ScheduleResult[] = [];
  let operations = 0;
  const queue = seeds.flatMap((seed) => Array.from({ length: repeat }, () => seed));
  const more = () => {
    if (mode === 'replay') return queue.length > 0;
    if ((nowMs() - began) / 1000 >= seconds) return false;
    return minOperations === 0 || operations < minOperations;
  };
  log(`${mode} run`);
  try {
    while (more()) {
      const seed = mode === 'replay' ? (queue.shift() as number) : randomInt(2 ** 32);
      const result = await runSchedule(planSchedule(seed), infrastructure);
      results.push(result);
      operations += Object.values(result.operations).reduce((sum, count) => sum + count, 0);
      log(`#${results.length} ${describeSchedule(result)}`);
      for (const violation of result.violations.slice(0, 3)) {
        log(`  ${violation.kind}: ${violation.text}`);
      }
    }
  } finally {
    await infrastructure.stop().catch(() => undefined);
  }
  const durationS = (nowMs() - began) / 1000;
  console.log(renderSummary({ mode, durationS, results }));
  const out =
    values.out ?? fileURLToPath(new URL(`../../results/schedules-${mode}.json`, import.meta.url));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ mode, durationS, results }, null, 2)}\n`);
  log(`results written to ${out}`);
  process.exitCode = results.some((result) => result.violations.length > 0) ? 1 : 0;
}

main().then(
  // Connections of killed client processes and stopped servers may leave handles; the verdict is in.
  () => process.exit(),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
