// What a lock with fencing prevents. worker-1 takes a lock and then stalls (a long GC pause, a
// stopped VM) past its lease; worker-2 is granted the lock and writes. When worker-1 runs again
// it writes too, as if it still held the lock: a TTL alone cannot stop that. The store refuses
// the write because worker-1's fence is older than the one it has already accepted.
//
// Two LockManagers stand for two processes; MemoryBackend needs no server. Swap it for
// `new IoredisBackend(redis)` (or any other backend) and the same code runs across machines.
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';

/** The protected resource: it remembers the highest fence it accepted and refuses older ones. */
class FencedStore {
  #lastFence = 0;
  value = '(empty)';

  write(value: string, fence: number): { ok: boolean; lastFence: number } {
    if (fence < this.#lastFence) return { ok: false, lastFence: this.#lastFence };
    this.#lastFence = fence;
    this.value = value;
    return { ok: true, lastFence: fence };
  }
}

const key = 'report:daily';
const backend = new MemoryBackend();
const store = new FencedStore();
const worker1 = new LockManager({ backend, owner: 'worker-1' });
const worker2 = new LockManager({ backend, owner: 'worker-2' });
const log = (who: string, what: string) => console.log(`${who.padEnd(8)}  ${what}`);

const lock1 = await worker1.acquire(key, { ttl: 200 });
log('worker-1', `acquired ${key}, fence ${lock1.fence}, lease 200 ms`);
log('worker-1', 'stalls (a GC pause, a stopped VM) and its lease runs out');

// worker-2 waits in line for the lock, which is free once worker-1's lease has expired.
const worker2Done = worker2.withLock(key, async (lock2) => {
  log('worker-2', `acquired ${key}, fence ${lock2.fence}`);
  const { ok } = store.write('report by worker-2', lock2.fence);
  log('worker-2', `writes the report: ${ok ? 'accepted' : 'refused'}`);
});

// The stall lasts until worker-2 has written, however busy this machine is.
await Promise.all([sleep(300), worker2Done]);

// A careful holder checks `held` before writing; this one does not (and a pause can also come
// between the check and the write). The fence still protects the store.
log('worker-1', `wakes up (lock1.held is ${lock1.held}) and writes its report anyway`);
const late = store.write('report by worker-1', lock1.fence);
log(
  'store',
  late.ok
    ? 'accepted the stale write: the lock did not protect it'
    : `refused it: fence ${lock1.fence} is older than ${late.lastFence}`,
);
await lock1.release(); // false: the lease was gone; release() never throws for that
await backend.close();
console.log(`result: the store holds "${store.value}"`);
