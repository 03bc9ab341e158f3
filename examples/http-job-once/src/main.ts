// One process of the service: `REDIS_URL` (default redis://127.0.0.1:6379), `PORT` (default 3000,
// 0 for any free port). Start two and POST /jobs/<id> to both at once: the job runs once.
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';
import { createJobServer } from './app.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const backend = new IoredisBackend(redis, { prefix: 'example' });
const locks = new LockManager({ backend });
const name = `pid ${process.pid}`;

const server = createJobServer({
  locks,
  redis,
  async job(id, signal) {
    console.log(`${name}: running job ${id}`);
    await sleep(300, undefined, { signal }); // the work: an export, a payment, an email
    // A count of every run, for the test to check that there was one.
    await redis.rpush(`example:job-runs:${id}`, name);
    return `job ${id} done by ${name}`;
  },
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : address;
  console.log(`${name}: listening on http://127.0.0.1:${port}`);
});

process.once('SIGTERM', () => {
  server.close();
  void backend.close().then(() => redis.quit());
});
