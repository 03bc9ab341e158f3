/**
 * `node bench/dist/pair-cost.js [--seconds N]`: where the time of one uncontended acquire +
 * release goes. The variants run in turn in 200 ms slices (so machine drift hits all alike) on
 * one ioredis connection to a redis-server of their own, each pair on another of 1 000 keys, and
 * for each the table gives the wall time, the client's CPU time (`process.cpuUsage`) and the
 * server's time (`INFO commandstats`, top-level commands only) per pair: the median over the
 * variant's slices (on a shared machine a slice that was descheduled or hit by garbage
 * collection is an outlier, which a sum would spread over the whole run), with ratios to raw's
 * client CPU and to the lightest fenced script pair's server time of the same run.
 *
 * From deadbolt's `LockManager` down to its bare scripts, the variants split the gap to the raw
 * lock into client JavaScript and server work; two reference script pairs with the same keys
 * and arguments bound what any Lua design can reach: one that does nothing, and the lightest lock
 * that still issues fences (one string key, SET NX PX and INCR).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { scripts } from '@deadbolt/redis-backend';
import { startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { COMPARE_AND_DELETE } from './contenders/raw.js';
import { LEASE_MS } from './contenders/types.js';

const SLICE_MS = 200;
const WARM_UP_PAIRS = 500;
const KEYS = Array.from({ length: 1_000 }, (_, index) => `pair-cost:${index}`);

const NOTHING = { acquire: 'return { 1, 1, 30000 }', release: 'return 1' };
const LIGHTEST_FENCED = {
  acquire:
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return { 0, -1 } end " +
    "return { 1, redis.call('INCR', KEYS[2]), tonumber(ARGV[2]) }",
  release:
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end " +
    "redis.call('DEL', KEYS[1]) redis.call('PUBLISH', KEYS[1], 'released') return 1",
};

/** One variant's slices: per pair, wall µs, client CPU µs and server µs of each slice. */
interface Totals {
  wall: number[];
  cpu: number[];
  server: number[];
}

/** The median: on a shared machine a slice that was descheduled or hit by GC is an outlier. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '12' } } });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error('[pair-cost] --seconds must be a positive number');
  const server = await startRedis();
  const redis = new Redis(server.url);
  const admin = new Redis(server.url);
  const backend = new IoredisBackend(redis);
  const locks = new LockManager({ backend });
  try {
    const load = (source: string) => redis.script('LOAD', source) as Promise<string>;
    const sha = {
      compareAndDelete: await load(COMPARE_AND_DELETE),
      acquire: await load(scripts.acquire.source),
      release: await load(scripts.release.source),
      nothingAcquire: await load(NOTHING.acquire),
      nothingRelease: await load(NOTHING.release),
      fencedAcquire: await load(LIGHTEST_FENCED.acquire),
      fencedRelease: await load(LIGHTEST_FENCED.release),
    };
    let next = 0;
    const nextKey = () => KEYS[next++ % KEYS.length] as string;
    const token = () => randomBytes(16).toString('hex');
    const ttl = String(LEASE_MS);
    /**
     * A pair of scripts run as the adapter runs deadbolt's for a mutex: the lock's one key, then
     * token and TTL to acquire, the token to release; `keysOf` names other keys instead.
     */
    const scriptPair =
      (acquireSha: string, releaseSha: string, keysOf = (lock: string) => [lock]) =>
      async () => {
        const keys = keysOf(backend.lockKey(nextKey()));
        const own = token();
        await redis.evalsha(acquireSha, keys.length, ...keys, own, ttl);
        await redis.evalsha(releaseSha, keys.length, ...keys, own);
      };
    const rawVariant = 'raw: SET NX PX + compare-and-delete';
    const fencedVariant = 'reference: lightest fenced lock script';
    const variants: Record<string, () => Promise<void>> = {
      [rawVariant]: async () => {
        const key = nextKey();
        const own = token();
        await redis.set(key, own, 'PX', LEASE_MS, 'NX');
        await redis.evalsha(sha.compareAndDelete, 1, key, own);
      },
      'deadbolt: LockManager': async () => {
        const lock = await locks.acquire(nextKey());
        await lock.release();
      },
      'deadbolt: LockManager tryAcquire': async () => {
        const lock = await locks.tryAcquire(nextKey());
        await lock?.release();
      },
      'deadbolt: IoredisBackend only': async () => {
        const key = nextKey();
        const own = token();
        await backend.acquire({ key, token: own, ttlMs: LEASE_MS, limit: 1, weight: 1 });
        await backend.release({ key, token: own });
      },
      // What LockManager.acquire sends by default (fair): a queued request that asks for handoff.
      'deadbolt: IoredisBackend only, queued as acquire() asks': async () => {
        const key = nextKey();
        const own = token();
        await backend.queue.acquire({
          key,
          token: own,
          ttlMs: LEASE_MS,
          limit: 1,
          weight: 1,
          owner: locks.owner,
          placeTtlMs: 2_000,
          handoff: { attempt: 1, ttlMs: 2_000 },
        });
        await backend.release({ key, token: own });
      },
      'deadbolt: its two scripts, bare EVALSHA': scriptPair(sha.acquire, sha.release),
      'reference: scripts that do nothing': scriptPair(sha.nothingAcquire, sha.nothingRelease),
      [fencedVariant]: scriptPair(sha.fencedAcquire, sha.fencedRelease, (lock) => [
        `${lock}:fenced`,
        `${lock}:fence`,
      ]),
    };
    const totals = new Map<string, Totals>(
      Object.keys(variants).map((name) => [name, { wall: [], cpu: [], server: [] }]),
    );
    // Untimed: the first pairs of each variant compile its code and load its scripts' keys.
    for (const pair of Object.values(variants)) {
      for (let warm = 0; warm < WARM_UP_PAIRS; warm++) await pair();
    }
    const rounds = Math.max(1, Math.round((seconds * 1000) / (SLICE_MS * totals.size)));
    for (let round = 0; round < rounds; round++) {
      for (const [name, pair] of Object.entries(variants)) {
        const total = totals.get(name) as Totals;
        await admin.config('RESETSTAT');
        const cpuBefore = process.cpuUsage();
        const startedAt = performance.now();
        let pairs = 0;
        while (performance.now() - startedAt < SLICE_MS) {
          await pair();
          pairs += 1;
        }
        total.wall.push(((performance.now() - startedAt) * 1000) / pairs);
        const cpu = process.cpuUsage(cpuBefore);
        total.cpu.push((cpu.user + cpu.system) / pairs);
        // Only raw sends SET itself; in the others a SET ran inside a script, counted in EVALSHA.
        const sent = name === rawVariant ? ['evalsha', 'set'] : ['evalsha'];
        total.server.push(microsIn(String(await admin.info('commandstats')), sent) / pairs);
      }
    }
    const raw = totals.get(rawVariant) as Totals;
    const fenced = totals.get(fencedVariant) as Totals;
    console.log(
      `Medians over ${rounds} slices of ${SLICE_MS} ms per variant; ratios of medians, same run.\n`,
    );
    console.log(
      `| variant | µs/pair | × raw pairs/s | client CPU µs/pair | × raw CPU | server µs/pair | × lightest fenced |`,
    );
    console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const [name, total] of totals) {
      const wall = median(total.wall);
      const cpu = median(total.cpu);
      const server = median(total.server);
      console.log(
        `| ${name} | ${wall.toFixed(1)} | ${(median(raw.wall) / wall).toFixed(2)} | ` +
          `${cpu.toFixed(1)} | ${(cpu / median(raw.cpu)).toFixed(2)} | ` +
          `${server.toFixed(1)} | ${(server / median(fenced.server)).toFixed(2)} |`,
      );
    }
  } finally {
    await backend.close();
    await redis.quit();
    await admin.quit();
    await server.stop();
  }
}

/** Microseconds the server spent in `commands` (a script's time includes what it ran). */
function microsIn(commandstats: string, commands: readonly string[]): number {
  let micros = 0;
  for (const match of commandstats.matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) {
    if (commands.includes(match[1] as string)) micros += Number(match[2]);
  }
  return micros;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
