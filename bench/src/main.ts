/**
 * `pnpm bench [--quick] [--only scenario,…] [--contenders id,…] [--out file]`: starts its own
 * redis-server, runs every scenario for every contender, prints markdown tables and the targets
 * of issue 7, and writes the raw figures as JSON (bench/results/latest.json).
 */
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { type PostgresDatabase, startPostgres, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { formatTargets } from './check-targets.js';
import { FULL, QUICK } from './config.js';
import {
  absent,
  contenders as allContenders,
  POSTGRES_URL_VARIABLE,
  usesPostgres,
} from './contenders/index.js';
import { redisVersion } from './redis-info.js';
import { renderMarkdown } from './report.js';
import { LATEST, type Results, writeResults } from './results.js';
import { runScenarios } from './runner.js';
import { contended } from './scenarios/contended.js';
import { cost } from './scenarios/cost.js';
import { handoff } from './scenarios/handoff.js';
import { multiprocess } from './scenarios/multiprocess.js';
import { saturation } from './scenarios/saturation.js';
import type { RunContext, Scenario } from './scenarios/types.js';
import { uncontended } from './scenarios/uncontended.js';

const SCENARIOS: readonly Scenario[] = [
  uncontended,
  contended,
  multiprocess,
  handoff,
  cost,
  saturation,
];
/** How long the end of the run waits for background stragglers before leaving anyway. */
const SETTLE_CAP_MS = 5_000;

function pick<T extends { id: string }>(
  all: readonly T[],
  ids: string | undefined,
  what: string,
): T[] {
  if (ids === undefined) return [...all];
  const wanted = ids.split(',').map((id) => id.trim());
  for (const id of wanted) {
    if (!all.some((item) => item.id === id)) {
      throw new Error(
        `[bench] unknown ${what} "${id}"; one of ${all.map((item) => item.id).join(', ')}`,
      );
    }
  }
  return all.filter((item) => wanted.includes(item.id));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      contenders: { type: 'string' },
      out: { type: 'string', default: LATEST },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'pnpm bench [--quick] [--only uncontended,contended,multiprocess,handoff,cost,saturation] ' +
        '[--contenders raw,deadbolt-ioredis,…] [--out file]',
    );
    return;
  }
  const config = values.quick ? QUICK : FULL;
  const scenarios = pick(SCENARIOS, values.only, 'scenario');
  const contenders = pick(allContenders, values.contenders, 'contender');
  const startedAt = Date.now();
  const log = (message: string) =>
    process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${message}\n`);

  const redis = await startRedis();
  const admin = new Redis(redis.url);
  log(`redis-server at ${redis.url}; ${config.mode} run, ${config.repetitions} repetitions`);
  // The PostgreSQL rows lock in a throwaway database; scenarios' child processes inherit its URL.
  let postgres: PostgresDatabase | undefined;
  if (contenders.some(usesPostgres)) {
    postgres = await startPostgres();
    process.env[POSTGRES_URL_VARIABLE] = postgres.url;
  }
  const deferred: Promise<unknown>[] = [];
  const settle = async (capMs: number) => {
    const pending = deferred.splice(0);
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => setTimeout(resolve, capMs).unref()),
    ]);
  };
  const context: RunContext = {
    config,
    redis,
    admin,
    runId: `bench-${randomBytes(4).toString('hex')}`,
    log,
    defer: (stopped) => deferred.push(stopped.catch(() => undefined)),
    settle: () => settle(SETTLE_CAP_MS),
  };
  try {
    const scenarioResults = await runScenarios(scenarios, contenders, context);
    const cpu = cpus();
    const results: Results = {
      meta: {
        date: new Date().toISOString(),
        mode: config.mode,
        command: `pnpm bench${values.quick ? ' --quick' : ''}`,
        node: process.versions.node,
        redis: await redisVersion(admin),
        machine: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform}`,
        durationSec: (Date.now() - startedAt) / 1000,
        config,
      },
      contenders: contenders.map(({ id, label, library, settings, role, usesRedis }) => ({
        id,
        label,
        library,
        settings,
        role,
        usesRedis,
      })),
      absent: [...absent],
      scenarios: scenarioResults,
    };
    await writeResults(values.out, results);
    process.stdout.write(renderMarkdown(results));
    process.stdout.write(`\n${formatTargets(results)}`);
    log(`figures written to ${values.out}`);
  } finally {
    await settle(SETTLE_CAP_MS);
    admin.disconnect();
    await redis.stop();
    await postgres?.stop();
  }
}

main().then(
  // Stragglers of the slowest peers may still be polling a server that is gone: leave now.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
