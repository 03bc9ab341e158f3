import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { nowMs, sleepUntil } from '../clock.js';
import type { Contender, LockClient, Release } from '../contenders/index.js';
import { commandCalls, connectionCount, usedMemory } from '../redis-info.js';
import { runContention } from './contention.js';
import type { Metrics, Outcome, RunContext, Scenario } from './types.js';

/** Commands the benchmark itself sends while counting; never charged to a contender. */
const OWN_COMMANDS = new Set(['config|resetstat', 'echo', 'info', 'monitor']);
/** Locks acquired at once while filling the server. */
const FILL_CONCURRENCY = 50;
/** Held locks whose keys are sized with `MEMORY USAGE`. */
const MEMORY_SAMPLES = 20;

/**
 * Scenario 5: what a lock costs the Redis server. Commands per acquisition under the 16-worker
 * contention of scenario 2 (INFO commandstats over a window, with MONITOR splitting commands
 * clients sent from those scripts ran), connections opened by 100 waiters on one key, and memory
 * per held lock.
 */
export const cost: Scenario = {
  id: 'cost',
  title: '5. Cost on the Redis server',
  description:
    'Commands/acq: INFO commandstats calls (CONFIG RESETSTAT first) over a window of 16-worker contention, ' +
    "divided by the grants in it; 'sent' counts only commands clients sent (MONITOR, which marks commands " +
    "run inside scripts as 'lua'), 'all' includes those the scripts ran. Extra connections: CLIENT LIST " +
    'with 100 waiters on one held key minus before them (own: connections the idle client keeps). ' +
    'Bytes/held lock: INFO used_memory delta over N held locks on distinct keys; MEMORY USAGE: summed ' +
    'over the keys of one lock; left/key: used_memory delta after releasing them all.',
  columns: [
    { metric: 'commandsSentPerAcquisition', header: 'cmds sent/acq', digits: 1 },
    { metric: 'commandsPerAcquisition', header: 'cmds all/acq', digits: 1 },
    { metric: 'ownConnections', header: 'own conns', digits: 0 },
    { metric: 'extraConnectionsFor100Waiters', header: 'extra conns, 100 waiters', digits: 0 },
    { metric: 'bytesPerHeldLock', header: 'bytes/held lock', digits: 0 },
    { metric: 'memoryUsagePerLock', header: 'MEMORY USAGE/lock', digits: 0 },
    { metric: 'bytesLeftPerKey', header: 'bytes left/key', digits: 0 },
  ],
  async repetition(contenders, context, repetition) {
    const outcomes = new Map<string, Outcome>();
    const measured = contenders.filter((contender) => contender.usesRedis);
    for (const contender of contenders) {
      if (!contender.usesRedis) {
        outcomes.set(contender.id, { skipped: 'not on Redis: costs Redis nothing' });
      }
    }
    const metrics = new Map<string, Metrics>(measured.map((contender) => [contender.id, {}]));
    const prefixOf = (contender: Contender) =>
      `${context.runId}-cost-${contender.id}-${repetition}`;
    // Commands first, each after the previous contender's stragglers stopped (they would be counted).
    for (const contender of measured) {
      await context.settle();
      Object.assign(
        metrics.get(contender.id)!,
        await commands(contender, context, prefixOf(contender)),
      );
    }
    for (const contender of measured) {
      Object.assign(
        metrics.get(contender.id)!,
        await memory(contender, context, prefixOf(contender)),
      );
    }
    // Waiters of one contender may still drain while the next is counted: their clients stay open
    // until every contender was counted, so no connection closes in the middle of a count.
    await context.settle();
    const open: { client: LockClient; drained: Promise<unknown> }[] = [];
    try {
      for (const contender of measured) {
        const { figures, client, drained } = await connections(
          contender,
          context,
          prefixOf(contender),
        );
        Object.assign(metrics.get(contender.id)!, figures);
        open.push({ client, drained });
      }
    } finally {
      for (const { client, drained } of open) context.defer(drained.finally(() => client.close()));
    }
    for (const [id, figures] of metrics) outcomes.set(id, { metrics: figures });
    return outcomes;
  },
};

async function commands(
  contender: Contender,
  context: RunContext,
  prefix: string,
): Promise<Metrics> {
  const { redis, admin } = context;
  const { workers, warmupMs, windowMs, drainMs } = context.config.cost;
  const client = await contender.open(redis.url);
  const key = `${prefix}/contended/`;
  await (await client.acquire(`${key}warm`))();
  const marker = `${prefix}/marker`;
  // A connection of its own, in MONITOR mode, that sees every command the server runs.
  const monitor = await admin.monitor();
  let counting = false;
  let sent = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (String(args[0]).toLowerCase() === 'echo' && args[1] === marker) {
      counting = !counting;
    } else if (counting && source !== 'lua') {
      // MONITOR shows what scripts run with the source `lua`: no client sent those.
      sent += 1;
    }
  });
  const names = Array.from({ length: workers }, (_, index) => `w${index}`);
  const startAt = nowMs() + 5;
  const windowStart = startAt + warmupMs;
  const windowEnd = windowStart + windowMs;
  let countedFrom = 0;
  let countedTo = 0;
  let calls = new Map<string, number>();
  const counted = (async () => {
    await sleepUntil(windowStart);
    await admin.config('RESETSTAT');
    await admin.echo(marker);
    countedFrom = nowMs();
    await sleepUntil(windowEnd);
    countedTo = nowMs();
    await admin.echo(marker);
    calls = await commandCalls(admin);
  })();
  const run = await runContention(client, {
    key,
    workers: names,
    startAt,
    windowStart,
    windowEnd,
    drainMs,
  });
  await counted;
  monitor.disconnect();
  await untilNoMonitor(admin);
  context.defer(run.stopped.finally(() => client.close()));
  const grants = run.log.acquisitions.filter(
    (acquisition) => acquisition.grantedAt >= countedFrom && acquisition.grantedAt < countedTo,
  ).length;
  let all = 0;
  for (const [command, count] of calls) if (!OWN_COMMANDS.has(command)) all += count;
  return {
    commandsSentPerAcquisition: sent / grants,
    commandsPerAcquisition: all / grants,
  };
}

async function connections(
  contender: Contender,
  context: RunContext,
  prefix: string,
): Promise<{ figures: Metrics; client: LockClient; drained: Promise<unknown> }> {
  const { redis, admin } = context;
  const { waiters, waitersSettleMs, waitersDrainMs } = context.config.cost;
  const before = await connectionCount(admin);
  const client = await contender.open(redis.url);
  const key = `${prefix}/waiters/`;
  await (await client.acquire(key))();
  const idle = await connectionCount(admin);
  const release = await client.acquire(key);
  const waiting = Array.from({ length: waiters }, () =>
    client.acquire(key).then(
      (next) => next(),
      () => undefined,
    ),
  );
  await sleep(waitersSettleMs);
  const during = await connectionCount(admin);
  await release();
  const drained = Promise.allSettled(waiting);
  await Promise.race([drained, sleep(waitersDrainMs)]);
  return {
    figures: { ownConnections: idle - before, extraConnectionsFor100Waiters: during - idle },
    client,
    drained,
  };
}

async function memory(contender: Contender, context: RunContext, prefix: string): Promise<Metrics> {
  const { redis, admin } = context;
  const count = context.config.cost.heldLocks;
  const client = await contender.open(redis.url);
  const keyOf = (index: number) => `${prefix}/m${index}/`;
  try {
    await (await client.acquire(`${prefix}/warm/`))();
    const before = await usedMemory(admin);
    const releases: Release[] = [];
    await inBatches(count, async (index) => {
      releases.push(await client.acquire(keyOf(index)));
    });
    const held = await usedMemory(admin);
    let sampled = 0;
    for (let sample = 0; sample < MEMORY_SAMPLES; sample++) {
      // Every Redis key of the lock: the trailing `/` keeps m1 from matching m10.
      const pattern = `*${keyOf(Math.floor((sample * count) / MEMORY_SAMPLES))}*`;
      for (const name of await admin.keys(pattern)) {
        sampled += Number(await admin.call('MEMORY', 'USAGE', name));
      }
    }
    await inBatches(releases.length, (index) => releases[index]!());
    const after = await usedMemory(admin);
    return {
      bytesPerHeldLock: (held - before) / count,
      memoryUsagePerLock: sampled / MEMORY_SAMPLES,
      bytesLeftPerKey: (after - before) / count,
    };
  } finally {
    await client.close();
  }
}

/** Runs `task(0 … count-1)`, {@link FILL_CONCURRENCY} at a time. */
async function inBatches(count: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: FILL_CONCURRENCY }, lane));
}

/** Waits until the server has dropped the MONITOR connection, so it is not counted as anyone's. */
async function untilNoMonitor(admin: Redis): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const list = String(await admin.call('CLIENT', 'LIST'));
    if (!/ flags=O /.test(list)) return;
    await sleep(10);
  }
}
