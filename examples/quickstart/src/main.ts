// Four workers, each with its own LockManager as if they were separate processes, share one
// backend and take turns on one lock. Swap MemoryBackend for IoredisBackend(redis) and the same
// code runs across machines.
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';

const backend = new MemoryBackend();
const key = 'report:daily';
let lastFence = 0;

async function worker(name: string): Promise<void> {
  const locks = new LockManager({ backend });

  // `await using` releases the lock when the block ends, even if it throws.
  {
    await using lock = await locks.acquire(key, { ttl: 5_000 });
    record(name, 'acquire', lock.fence);
    await sleep(20);
  }

  // withLock renews the lease while the callback runs and always releases it.
  await locks.withLock(key, async (lock) => {
    record(name, 'withLock', lock.fence);
    await sleep(20);
  });
}

/** A protected resource checks the fence: a holder with a lower one is stale. */
function record(name: string, how: string, fence: number): void {
  if (fence <= lastFence) throw new Error(`stale fence ${fence} after ${lastFence}`);
  lastFence = fence;
  console.log(`${name} holds "${key}" via ${how.padEnd(8)} fence ${fence}`);
}

await Promise.all(['worker-1', 'worker-2', 'worker-3', 'worker-4'].map(worker));
await backend.close();
console.log('done: every worker held the lock twice, one at a time, with increasing fences');
