// A worker pool limited to 3 concurrent jobs across every process that shares the Redis
// (REDIS_URL, default redis://127.0.0.1:6379). Heavy jobs take 2 permits.
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const backend = new IoredisBackend(redis, { prefix: 'example' });
const LIMIT = 3;

let running = 0;
let peak = 0;

async function worker(name: string, jobs: number[]): Promise<void> {
  // One manager per worker, as if each ran in its own process.
  const pool = new LockManager({ backend }).semaphore('render-farm', { limit: LIMIT });
  for (const job of jobs) {
    const weight = job % 4 === 0 ? 2 : 1;
    await pool.withPermit(
      async (permit) => {
        running += weight;
        peak = Math.max(peak, running);
        console.log(
          `${name} runs job ${job} (weight ${weight}, ${running}/${LIMIT} permits out, fence ${permit.fence})`,
        );
        await sleep(30);
        running -= weight;
      },
      { weight, wait: 30_000 },
    );
  }
}

await Promise.all([
  worker('worker-a', [1, 2, 3, 4]),
  worker('worker-b', [5, 6, 7, 8]),
  worker('worker-c', [9, 10, 11, 12]),
  worker('worker-d', [13, 14, 15, 16]),
]);
console.log(`done: 16 jobs, at most ${peak} of ${LIMIT} permits out at once`);
await backend.close();
await redis.quit();
