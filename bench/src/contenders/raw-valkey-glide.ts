import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GlideClient, TimeUnit } from '@valkey/valkey-glide';
import { COMPARE_AND_DELETE, COMPARE_AND_DELETE_SHA, GIVE_UP_MS, RETRY_MS } from './raw.js';
import { type Contender, LEASE_MS } from './types.js';

/**
 * The floor on Valkey GLIDE: the `raw` lock, command for command, on a `GlideClient` with its
 * defaults, the release script sent with `customCommand` as deadbolt sends its scripts. What
 * deadbolt + valkey-glide is judged against ("raw on the same client").
 */
export const rawValkeyGlide: Contender = {
  id: 'raw-valkey-glide',
  label: 'raw SET NX PX + Lua delete (valkey-glide)',
  library: '@valkey/valkey-glide 2.5.2',
  settings: 'retry every 10 ms, give up after 10 s',
  role: 'raw',
  usesRedis: true,
  async open(redisUrl) {
    const { hostname, port } = new URL(redisUrl);
    const client = await GlideClient.createClient({
      addresses: [{ host: hostname, port: Number(port) }],
    });
    const release = async (key: string, token: string) => {
      try {
        await client.customCommand(['EVALSHA', COMPARE_AND_DELETE_SHA, '1', key, token]);
      } catch (error) {
        // GLIDE words the server's NOSCRIPT its own way.
        if (!(error instanceof Error) || !/NoScriptError|^NOSCRIPT/.test(error.message))
          throw error;
        await client.customCommand(['EVAL', COMPARE_AND_DELETE, '1', key, token]);
      }
    };
    const expiry = { type: TimeUnit.Milliseconds, count: LEASE_MS } as const;
    return {
      async acquire(key) {
        const token = randomBytes(16).toString('hex');
        const giveUpAt = Date.now() + GIVE_UP_MS;
        for (;;) {
          const set = await client.set(key, token, {
            conditionalSet: 'onlyIfDoesNotExist',
            expiry,
          });
          if (set === 'OK') return () => release(key, token);
          if (Date.now() >= giveUpAt)
            throw new Error(`raw-valkey-glide: gave up on ${key} after ${GIVE_UP_MS} ms`);
          await sleep(RETRY_MS);
        }
      },
      async close() {
        client.close();
      },
    };
  },
};
