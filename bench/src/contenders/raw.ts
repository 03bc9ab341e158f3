import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type Contender, LEASE_MS } from './types.js';

/** Deletes the key only while it still holds the caller's token. */
export const COMPARE_AND_DELETE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
export const COMPARE_AND_DELETE_SHA = createHash('sha1').update(COMPARE_AND_DELETE).digest('hex');
export const RETRY_MS = 10;
/** Gives up like deadbolt's default `wait`. */
export const GIVE_UP_MS = 10_000;

/**
 * Takes the lock and a fence in one step: `SET key token NX PX`, then INCR of the key's fence
 * counter, in one script. The least a lock that hands out fencing tokens must run on the server.
 */
export const SET_AND_FENCE =
  "if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end " +
  "return redis.call('incr', KEYS[2])";
const SET_AND_FENCE_SHA = createHash('sha1').update(SET_AND_FENCE).digest('hex');

/** Runs a script by SHA1, and by source when the server does not have it yet. */
async function runScript(
  redis: Redis,
  source: string,
  sha: string,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(source, keys.length, ...keys, ...args);
  }
}

/**
 * A hand-written lock on one ioredis client, retried every 10 ms, released by a
 * compare-and-delete script; `fenced` takes a fence with each grant.
 */
function rawLock(fenced: boolean): Contender['open'] {
  return async (redisUrl) => {
    const redis = new Redis(redisUrl);
    await redis.ping();
    const take = fenced
      ? async (key: string, token: string) =>
          (await runScript(
            redis,
            SET_AND_FENCE,
            SET_AND_FENCE_SHA,
            [key, `${key}:fence`],
            [token, LEASE_MS],
          )) !== 0
      : async (key: string, token: string) =>
          (await redis.set(key, token, 'PX', LEASE_MS, 'NX')) === 'OK';
    return {
      async acquire(key) {
        const token = randomBytes(16).toString('hex');
        const giveUpAt = Date.now() + GIVE_UP_MS;
        for (;;) {
          if (await take(key, token)) {
            return async () => {
              await runScript(redis, COMPARE_AND_DELETE, COMPARE_AND_DELETE_SHA, [key], [token]);
            };
          }
          if (Date.now() >= giveUpAt)
            throw new Error(`raw: gave up on ${key} after ${GIVE_UP_MS} ms`);
          await sleep(RETRY_MS);
        }
      },
      async close() {
        await redis.quit();
      },
    };
  };
}

/**
 * The floor: what a careful hand-written lock costs. `SET key token NX PX`, retried every 10 ms,
 * and a compare-and-delete script (EVALSHA, EVAL on NOSCRIPT) on the same ioredis client.
 */
export const raw: Contender = {
  id: 'raw',
  label: 'raw SET NX PX + Lua delete',
  library: 'ioredis 5.9.3',
  settings: 'retry every 10 ms, give up after 10 s',
  role: 'raw',
  usesRedis: true,
  open: rawLock(false),
};

/**
 * The floor for a lock with fencing tokens: the raw lock taken by a script that also increments
 * a fence counter. A reference for what fences cost on the server, not a target.
 */
export const rawFenced: Contender = {
  id: 'raw-fenced',
  label: 'raw fenced: SET NX PX + INCR in Lua',
  library: 'ioredis 5.9.3',
  settings: 'retry every 10 ms, give up after 10 s',
  role: 'raw',
  usesRedis: true,
  open: rawLock(true),
};
