/**
 * `pnpm reliability [--quick] [--out file]`: worker processes contend for one deadbolt lock and
 * increment a fenced counter under it while faults are injected (holders killed and frozen, Redis
 * restarted, the network slowed, cut and blackholed, quorum members killed). Prints markdown,
 * writes JSON (reliability/results/<mode>.json) and exits 1 when a guarantee was violated.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
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
import { nowMs, sleep } from './clock.js';
import {
  type FaultSettings,
  freezeHolder,
  killHolder,
  proxyBlackhole,
  proxyDrop,
  proxyLatency,
  quorumFaults,
  redisRestartEmpty,
  redisRestartWithData,
  type TrialResult,
} from './faults.js';
import {
  type RunResults,
  renderMarkdown,
  summariseFaults,
  type WorkloadFigures,
} from './report.js';
import { Workload, type WorkloadOptions } from './workload.js';

interface Config {
  mode: 'quick' | 'full';
  workers: number;
  /** Trials of each fault. */
  trials: number;
  /** The counter workload on one server runs at least this many acquisitions. */
  minAcquisitions: number;
  /** …but gives up on that after this long (a violation: it must get there). */
  maxWorkloadMs: number;
  /** Pause between trials, so each starts from a workload in its stride. */
  gapMs: number;
  waitMs: number;
  faults: FaultSettings;
}

const FAULTS: FaultSettings = {
  ttlMs: 1_000,
  redisDownMs: 200,
  latencyMs: 40,
  latencyForMs: 1_000,
  blackholeMs: 1_500,
  quorumWindowMs: 1_000,
  grantSlackMs: 250,
};

const FULL: Config = {
  mode: 'full',
  workers: 8,
  trials: 12,
  minAcquisitions: 20_000,
  maxWorkloadMs: 8 * 60_000,
  gapMs: 300,
  waitMs: 5_000,
  faults: FAULTS,
};

const QUICK: Config = {
  ...FULL,
  mode: 'quick',
  // Two, so the freeze trials wake the holder both ways: its own timer, then an IPC message.
  trials: 2,
  minAcquisitions: 300,
  maxWorkloadMs: 60_000,
};

/**
 * redis-server keeps an append-only file in its own directory, so a restart can come back with
 * its data (or empty, once the file is deleted). `always` writes and syncs it before each reply:
 * a SIGKILL can then lose nothing that a client was told.
 */
const PERSISTENT = ['--appendonly', 'yes', '--appendfsync', 'always'];

function log(message: string): void {
  process.stderr.write(`[reliability ${(process.uptime()).toFixed(1)} s] ${message}\n`);
}

function figures(
  workload: Workload,
  name: string,
  counts: Awaited<ReturnType<Workload['finish']>>,
): WorkloadFigures {
  const { store } = workload;
  return {
    name,
    workers: workload.options.workers,
    ttlMs: workload.options.ttlMs,
    acquisitions: workload.acquisitions,
    acceptedIncrements: store.acceptedWrites,
    finalCounter: store.value,
    lostUpdates: store.lostUpdates,
    nonIncrements: store.nonIncrements,
    staleReadsRejected: store.staleReads,
    staleWritesRejected: store.staleWrites,
    overlaps: workload.overlaps().length,
    closestApproachMs: workload.closestApproach(),
    workerCounts: counts,
    unexpectedExits: workload.unexpectedExits,
  };
}

async function waitForGrants(workload: Workload, count: number, timeoutMs: number): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  const target = workload.acquisitions + count;
  while (workload.acquisitions < target) {
    if (nowMs() > deadline)
      throw new Error(`${workload.options.name}: fewer than ${count} grants in ${timeoutMs} ms`);
    await sleep(20);
  }
}

function logTrial(result: TrialResult, index: number): void {
  const outcome = result.ok ? 'ok' : 'FAILED';
  const recovery = result.recoveryMs?.toFixed(0) ?? '–';
  const problems = result.ok ? '' : `: ${result.problems.join('; ')}`;
  log(`${result.fault} #${index}: ${outcome}, available again after ${recovery} ms${problems}`);
}

/** The counter workload on `backend`, with the run's workers, TTL and wait. */
function counterWorkload(
  config: Config,
  name: string,
  key: string,
  backend: WorkloadOptions['backend'],
): Workload {
  return new Workload({
    name,
    backend,
    key,
    ttlMs: config.faults.ttlMs,
    waitMs: config.waitMs,
    workers: config.workers,
    log,
  });
}

async function singleServerPhase(config: Config, trials: TrialResult[]): Promise<WorkloadFigures> {
  const redis: RedisServer = await startRedis({ args: PERSISTENT });
  const proxy: FaultProxy = await startFaultProxy(redis);
  const workload = counterWorkload(
    config,
    'counter, one server via the fault proxy',
    'reliability:counter',
    {
      kind: 'single',
      url: proxy.url,
    },
  );
  try {
    await workload.start();
    await waitForGrants(workload, 50, 30_000);
    log(`${config.workers} workers on ${redis.url} through ${proxy.url}`);
    const settings = config.faults;
    const kinds = [
      (index: number) => killHolder(workload, settings, index),
      (index: number) => freezeHolder(workload, settings, index),
      (index: number) => redisRestartEmpty(workload, redis, settings, index),
      (index: number) => redisRestartWithData(workload, redis, settings, index),
      (index: number) => proxyLatency(workload, proxy, settings, index),
      (index: number) => proxyDrop(workload, proxy, settings, index),
      (index: number) => proxyBlackhole(workload, proxy, settings, index),
    ];
    for (let index = 0; index < config.trials; index++) {
      for (const run of kinds) {
        const result = await run(index);
        trials.push(result);
        logTrial(result, index);
        await sleep(config.gapMs);
      }
      log(`${workload.acquisitions} acquisitions so far`);
    }
    const deadline = nowMs() + config.maxWorkloadMs;
    while (workload.acquisitions < config.minAcquisitions && nowMs() < deadline) {
      await sleep(1_000);
      log(`${workload.acquisitions} acquisitions so far`);
    }
    return figures(workload, workload.options.name, await workload.finish());
  } finally {
    await workload.finish().catch(() => undefined);
    await proxy.close();
    await redis.stop();
  }
}

async function quorumPhase(config: Config, trials: TrialResult[]): Promise<WorkloadFigures> {
  const servers = await startRedisServers(5, { args: PERSISTENT });
  const workload = counterWorkload(
    config,
    'counter, quorum() of 5 servers',
    'reliability:quorum-counter',
    {
      kind: 'quorum',
      urls: servers.map((server) => server.url),
    },
  );
  try {
    await workload.start();
    await waitForGrants(workload, 20, 30_000);
    log(`${config.workers} workers on quorum() of ${servers.length} servers`);
    for (let index = 0; index < config.trials; index++) {
      const result = await quorumFaults(workload, servers, config.faults, index);
      trials.push(result);
      logTrial(result, index);
      await sleep(config.gapMs);
    }
    return figures(workload, workload.options.name, await workload.finish());
  } finally {
    await workload.finish().catch(() => undefined);
    await Promise.all(servers.map((server) => server.stop()));
  }
}

function violationsOf(
  workloads: readonly WorkloadFigures[],
  trials: readonly TrialResult[],
  config: Config,
): string[] {
  const violations: string[] = [];
  for (const workload of workloads) {
    const where = workload.name;
    if (workload.lostUpdates !== 0)
      violations.push(`${where}: ${workload.lostUpdates} lost updates`);
    if (workload.nonIncrements !== 0)
      violations.push(`${where}: ${workload.nonIncrements} writes that were not increments`);
    if (workload.overlaps !== 0)
      violations.push(`${where}: ${workload.overlaps} overlapping critical sections`);
    for (const exit of workload.unexpectedExits) violations.push(`${where}: ${exit}`);
  }
  const counter = workloads[0];
  if (counter !== undefined && counter.acquisitions < config.minAcquisitions) {
    violations.push(
      `${counter.name}: ${counter.acquisitions} acquisitions, fewer than ${config.minAcquisitions}`,
    );
  }
  for (const trial of trials) {
    if (!trial.ok) violations.push(`${trial.fault} #${trial.trial}: ${trial.problems.join('; ')}`);
  }
  return violations;
}

async function redisVersion(): Promise<string> {
  const server = await startRedis();
  try {
    const info = String(await server.call('INFO', 'server'));
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      trials: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('pnpm reliability [--quick] [--trials n] [--out file]');
    return;
  }
  const preset = values.quick ? QUICK : FULL;
  const config =
    values.trials === undefined ? preset : { ...preset, trials: Number(values.trials) };
  const startedAt = new Date();
  const began = nowMs();
  log(
    `${config.mode} run: ${config.trials} trials of each fault, ${config.minAcquisitions}+ acquisitions`,
  );
  const trials: TrialResult[] = [];
  const workloads = [await singleServerPhase(config, trials), await quorumPhase(config, trials)];
  const violations = violationsOf(workloads, trials, config);
  const results: RunResults = {
    mode: config.mode,
    startedAt: startedAt.toISOString(),
    durationS: (nowMs() - began) / 1000,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      redis: await redisVersion(),
    },
    workloads,
    faults: summariseFaults(trials),
    trials,
    violations,
  };
  const out =
    values.out ?? fileURLToPath(new URL(`../results/${config.mode}.json`, import.meta.url));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(renderMarkdown(results));
  log(`results written to ${out}`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}

main().then(
  // Clients of killed workers and stopped servers may leave handles behind; the verdict is in.
  () => process.exit(),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
