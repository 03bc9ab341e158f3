// A table that refuses stale writers, end to end. Two workers each add to one account's balance
// under a lock. worker-1 reads the balance, then stalls past its lease (a GC pause); worker-2
// takes the lock and adds its amount; worker-1 wakes and writes what it computed before the
// pause, which would lose worker-2's update. The row refuses it: worker-1's fence is older.
// DATABASE_URL names the database (default postgres://postgres@127.0.0.1:5432/postgres).
import { LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import pg from 'pg';
import { getAccount, SCHEMA, StaleFenceError, setBalance } from './fenced-store.js';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
});
await pool.query(SCHEMA);
await pool.query("DELETE FROM fenced_accounts WHERE id = 'acct-1'");

// Any backend works: the lock's store and the protected table need not be the same database.
const backend = new MemoryBackend();
const worker1 = new LockManager({ backend, owner: 'worker-1' });
const worker2 = new LockManager({ backend, owner: 'worker-2' });

await worker1.withLock('acct-1', (lock) => setBalance(pool, 'acct-1', 100, lock.fence));
console.log(`balance starts at ${(await getAccount(pool, 'acct-1'))?.balanceCents}`);

/** Writes `balance` with `fence`, saying what the row did. */
async function write(balance: number, fence: number): Promise<string> {
  try {
    await setBalance(pool, 'acct-1', balance, fence);
    return `wrote ${balance} with fence ${fence}`;
  } catch (error) {
    if (error instanceof StaleFenceError) return `refused: ${error.message}`;
    throw error;
  }
}
const balance = async () => (await getAccount(pool, 'acct-1'))?.balanceCents ?? 0;

// worker-1 takes the lock, reads the balance to add 10 to it, and stalls.
const stale = await worker1.acquire('acct-1', { ttl: 200 });
const seenByWorker1 = await balance();
// Its lease expires meanwhile: worker-2, waiting, is granted the lock and adds 5.
const fresh = await worker2.acquire('acct-1', { wait: 5_000 });
console.log(`worker-2: ${await write((await balance()) + 5, fresh.fence)}`);
await fresh.release();
// worker-1 wakes and writes what it computed before the pause: it would erase worker-2's 5.
console.log(`worker-1: ${await write(seenByWorker1 + 10, stale.fence)}`);
console.log(`balance ends at ${(await getAccount(pool, 'acct-1'))?.balanceCents} (100 + 5)`);

await backend.close();
await pool.end();
