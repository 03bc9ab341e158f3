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
  async open(redisUrl) {
    const redis = new Redis(redisUrl);
    await redis.ping();
    const release = async (key: string, token: string) => {
      try {
        await redis.evalsha(COMPARE_AND_DELETE_SHA, 1, key, token);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        await redis.eval(COMPARE_AND_DELETE, 1, key, token);
      }
    };
    return {
      async acquire(key) {
        const token = randomBytes(16).toString('hex');
        const giveUpAt = Date.now() + GIVE_UP_MS;
        for (;;) {
          if ((await redis.set(key, token, 'PX', LEASE_MS, 'NX')) === 'OK') {
            return () => release(key, token);
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
  },
};
