import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));
const PROCESSES = 3;
const TICKS = 4;

it('runs each tick in exactly one of three processes', async () => {
  await using redisServer = await startRedis();
  const children = Array.from({ length: PROCESSES }, () =>
    spawn(process.execPath, ['dist/main.js'], {
      cwd: exampleDir,
      env: {
        ...process.env,
        REDIS_URL: redisServer.url,
        CRON_EVERY_MS: '500',
        CRON_TICKS: String(TICKS),
        CRON_WAIT_FOR_START: '1',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const outputs = children.map(async (child) => {
    const lines: string[] = [];
    let ready: () => void = () => {};
    const isReady = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const done = (async () => {
      for await (const line of createInterface({ input: child.stdout })) {
        if (line.endsWith(': ready')) ready();
        lines.push(line);
      }
      return lines;
    })();
    return { isReady, done };
  });
  try {
    const watched = await Promise.all(outputs);
    // Every process is connected before any starts ticking, so they all see the same ticks.
    await Promise.all(watched.map(({ isReady }) => isReady));
    for (const child of children) child.stdin.write('start\n');
    const logs = (await Promise.all(watched.map(({ done }) => done))).flat();

    const outcomes = new Map<string, string[]>();
    for (const [, tick, outcome] of logs.flatMap((line) => [
      ...line.matchAll(/tick (\d+) (\w+)/g),
    ])) {
      outcomes.set(tick as string, [...(outcomes.get(tick as string) ?? []), outcome as string]);
    }
    // Each tick ran in exactly one process; the others skipped it. (A process whose timer fired
    // after the tick's window says `late` and leaves it alone; on a machine so busy that every
    // process was late, nobody ran it.)
    expect(outcomes.size).toBeGreaterThanOrEqual(TICKS);
    for (const [tick, seen] of outcomes) {
      const ran = seen.every((outcome) => outcome === 'late') ? 0 : 1;
      expect(
        seen.filter((outcome) => outcome === 'ran'),
        `tick ${tick}`,
      ).toHaveLength(ran);
      expect(
        seen.filter((outcome) => outcome === 'failed'),
        `tick ${tick}`,
      ).toHaveLength(0);
    }
    // Contended: most ticks were seen by every process.
    expect(
      [...outcomes.values()].filter((seen) => seen.length === PROCESSES).length,
    ).toBeGreaterThan(0);

    const redis = new Redis(redisServer.url);
    try {
      const runs = await redis.lrange('example:cron-runs', 0, -1);
      const ranTicks = runs.map((run) => run.split(' ')[0]);
      expect(new Set(ranTicks).size).toBe(ranTicks.length);
    } finally {
      redis.disconnect();
    }
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
  }
});
