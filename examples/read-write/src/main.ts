// Readers share a config while a writer updates it; readers never see a half-written config and
// the writer gets in although readers keep coming (REDIS_URL, default redis://127.0.0.1:6379).
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const backend = new IoredisBackend(redis, { prefix: 'example' });

/** The shared resource: updated in two steps, so a reader without the lock could see them differ. */
const config = { version: 1, checksum: 1 };
let tornReads = 0;
let reads = 0;
let readersAtOnce = 0;
let mostReadersAtOnce = 0;
let stop = false;

async function reader(): Promise<void> {
  const lock = new LockManager({ backend }).readWriteLock('config');
  while (!stop) {
    await lock.read.withLock(async () => {
      readersAtOnce += 1;
      mostReadersAtOnce = Math.max(mostReadersAtOnce, readersAtOnce);
      if (config.version !== config.checksum) tornReads += 1;
      reads += 1;
      await sleep(10);
      readersAtOnce -= 1;
    });
  }
}

async function writer(): Promise<void> {
  const lock = new LockManager({ backend }).readWriteLock('config');
  for (let update = 0; update < 3; update++) {
    await sleep(50);
    const askedAt = Date.now();
    await lock.write.withLock(async (grant) => {
      config.version += 1;
      await sleep(20); // a reader here would see the config half-written
      config.checksum = config.version;
      console.log(
        `writer: version ${config.version} after waiting ${Date.now() - askedAt} ms (fence ${grant.fence})`,
      );
    });
  }
}

const readers = [reader(), reader(), reader(), reader()];
await writer();
stop = true;
await Promise.all(readers);
console.log(
  `done: ${reads} reads, up to ${mostReadersAtOnce} readers at once, ${tornReads} torn reads`,
);
await backend.close();
await redis.quit();
