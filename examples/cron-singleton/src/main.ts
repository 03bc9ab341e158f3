// One process of a scheduled job: start several (`REDIS_URL`, default redis://127.0.0.1:6379) and
// each tick runs in one of them. `CRON_EVERY_MS` (default 5 000) sets the period, `CRON_TICKS`
// stops after that many ticks, and `CRON_WAIT_FOR_START=1` waits for a line on stdin first (the
// test starts every process at once that way).
import { once } from 'node:events';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';
import { singletonCron } from './cron.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const backend = new IoredisBackend(redis, { prefix: 'example' });
const locks = new LockManager({ backend });
const everyMs = Number(process.env.CRON_EVERY_MS ?? 5_000);
const maxTicks = Number(process.env.CRON_TICKS ?? Number.POSITIVE_INFINITY);
const name = `pid ${process.pid}`;

await redis.ping();
console.log(`${name}: ready`);
if (process.env.CRON_WAIT_FOR_START === '1') await once(process.stdin, 'data');

let ticks = 0;
const stop = singletonCron({
  locks,
  name: 'cleanup',
  everyMs,
  async run(tick) {
    // The job: here, a record of who ran which tick.
    await redis.rpush('example:cron-runs', `${tick} ${name}`);
  },
  onTick(tick, outcome, error) {
    console.log(`${name}: tick ${tick} ${outcome}${error ? `: ${String(error)}` : ''}`);
    if (++ticks >= maxTicks) void shutdown();
  },
});

async function shutdown(): Promise<void> {
  stop();
  await backend.close();
  await redis.quit();
  process.stdin.destroy();
}
process.once('SIGTERM', () => void shutdown());
