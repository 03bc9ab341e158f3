// deadbolt on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { PostgresBackend } from '@deadbolt/postgres';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
});
const backend = new PostgresBackend(pool, { table: 'example_locks' });
// Optional: the first lock would create the tables too. A deploy step can run it instead.
await backend.migrate();

// The protected resource, in the same database: a row that only takes writes with a higher fence,
// so a holder whose lease ran out (a long pause) cannot overwrite a newer holder's work.
await pool.query(
  'CREATE TABLE IF NOT EXISTS example_report (id int PRIMARY KEY, body text NOT NULL, fence bigint NOT NULL)',
);
await pool.query("INSERT INTO example_report VALUES (1, '', 0) ON CONFLICT (id) DO NOTHING");
async function write(body: string, fence: number): Promise<string> {
  const { rowCount } = await pool.query(
    'UPDATE example_report SET body = $1, fence = $2 WHERE id = 1 AND fence < $2',
    [body, fence],
  );
  return rowCount === 1 ? 'accepted' : 'rejected';
}

// Two workers, as two processes would be: each LockManager asks the database for itself.
const alice = new LockManager({ backend, owner: 'alice' });
const bob = new LockManager({ backend, owner: 'bob' });

// 1. alice holds the lock; bob waits in the queue (over LISTEN, not by polling).
const first = await alice.acquire('report:1', { ttl: 5_000 });
console.log(`alice holds report:1 with fence ${first.fence}`);
const bobWaiting = bob.acquire('report:1', { ttl: 5_000, wait: 10_000 });
let info = await backend.inspection.inspect({ key: 'report:1' });
while (info?.queued !== 1) {
  await sleep(10);
  info = await backend.inspection.inspect({ key: 'report:1' });
}
console.log(`inspect: held by ${info.holders.map((holder) => holder.owner).join(', ')}, 1 queued`);
console.log(`alice writes with fence ${first.fence}: ${await write('by alice', first.fence)}`);

// 2. alice releases: the database hands the lock to bob, who is told through NOTIFY.
await first.release();
const second = await bobWaiting;
console.log(`bob was handed report:1 with a higher fence: ${second.fence > first.fence}`);
console.log(`bob writes with fence ${second.fence}: ${await write('by bob', second.fence)}`);

// 3. A stale holder, say alice after a pause, still has the old fence: the row refuses it.
console.log(`alice writes again with fence ${first.fence}: ${await write('stale', first.fence)}`);
await second.release();

await backend.close(); // gives back the listening connection; the pool stays yours
await pool.end();
