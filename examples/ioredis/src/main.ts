// deadbolt on ioredis against a local Redis (REDIS_URL, default redis://127.0.0.1:6379).
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const backend = new IoredisBackend(redis, { prefix: 'example' });
const locks = new LockManager({ backend });

/** The protected resource: it remembers the highest fence it accepted and refuses lower ones. */
const store = {
  highestFence: 0,
  value: '',
  write(value: string, fence: number): boolean {
    if (fence < this.highestFence) return false;
    this.highestFence = fence;
    this.value = value;
    return true;
  },
};

// 1. acquire and release, with `await using`.
{
  await using lock = await locks.acquire('invoice:42', { ttl: 5_000 });
  console.log(`acquired invoice:42 with fence ${lock.fence}`);
}

// 2. withLock renews the lease while the work outlasts the TTL.
await locks.withLock(
  'report:daily',
  async (lock) => {
    await sleep(5_000);
    console.log(`withLock: still held after 5 s on a 2 s lease: ${!lock.signal.aborted}`);
  },
  { ttl: 2_000 },
);

// 3. A holder that pauses past its lease is stopped by the fence, not by luck.
const stale = await locks.acquire('account:7', { ttl: 200 });
await sleep(300); // a GC pause: the lease expires meanwhile
const fresh = await new LockManager({ backend }).acquire('account:7');
console.log(
  `fresh holder writes with fence ${fresh.fence}: ${store.write('fresh', fresh.fence) ? 'accepted' : 'rejected'}`,
);
console.log(
  `stale holder writes with fence ${stale.fence}: ${store.write('stale', stale.fence) ? 'accepted' : 'rejected'}`,
);
await fresh.release();
console.log(`stale release() resolves ${await stale.release()} (it no longer held the lock)`);

await backend.close();
await redis.quit();
