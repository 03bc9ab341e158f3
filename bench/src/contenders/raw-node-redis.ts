import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { COMPARE_AND_DELETE, COMPARE_AND_DELETE_SHA, GIVE_UP_MS, RETRY_MS } from './raw.js';
import { type Contender, LEASE_MS } from './types.js';

/**
 * The floor on node-redis: the `raw` lock, command for command, on a node-redis client with its
 * defaults. A reference for what node-redis itself costs next to ioredis, not a target.
 */
export const rawNodeRedis: Contender = {
  id: 'raw-node-redis',
  label: 'raw SET NX PX + Lua delete (node-redis)',
  library: 'redis 6.3.1',
  settings: 'retry every 10 ms, give up after 10 s',
  role: 'raw',
  usesRedis: true,
  async open(redisUrl) {
    const client = await createClient({ url: redisUrl }).connect();
    const release = async (key: string, token: string) => {
      const options = { keys: [key], arguments: [token] };
      try {
        await client.evalSha(COMPARE_AND_DELETE_SHA, options);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        await client.eval(COMPARE_AND_DELETE, options);
      }
    };
    return {
      async acquire(key) {
        const token = randomBytes(16).toString('hex');
        const giveUpAt = Date.now() + GIVE_UP_MS;
        for (;;) {
          if ((await client.set(key, token, { PX: LEASE_MS, NX: true })) === 'OK') {
            return () => release(key, token);
          }
          if (Date.now() >= giveUpAt)
            throw new Error(`raw-node-redis: gave up on ${key} after ${GIVE_UP_MS} ms`);
          await sleep(RETRY_MS);
        }
      },
      async close() {
        client.destroy();
      },
    };
  },
};
