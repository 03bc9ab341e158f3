import { Redis } from 'ioredis';
import Redlock, { ResourceLockedError } from 'redlock';
import { type Contender, LEASE_MS } from './types.js';

/** Settings of `redlock` that differ from its defaults (retryCount 10, retryDelay 200 ± 100 ms). */
export interface RedlockVariant {
  retryCount?: number;
}

/**
 * `redlock` 5.0.0-beta.2 on one ioredis client: `acquire([key], 30 000)`, `lock.release()`, and
 * the `error` listener its README asks for (it emits every refused attempt as an error event).
 */
export function redlockContender(variant: RedlockVariant = {}): Contender {
  const custom = variant.retryCount !== undefined;
  return {
    id: custom ? `redlock-retry${variant.retryCount}` : 'redlock',
    label: custom ? `redlock (retryCount: ${variant.retryCount})` : 'redlock',
    library: 'redlock 5.0.0-beta.2, ioredis 5.9.3',
    settings: custom ? `retryCount: ${variant.retryCount}` : 'defaults',
    role: 'peer',
    usesRedis: true,
    async open(redisUrl) {
      const redis = new Redis(redisUrl);
      await redis.ping();
      const redlock = new Redlock([redis], variant);
      redlock.on('error', (error: unknown) => {
        if (error instanceof ResourceLockedError) return;
        console.error('[bench] redlock:', error);
      });
      return {
        async acquire(key) {
          const lock = await redlock.acquire([key], LEASE_MS);
          return async () => {
            await lock.release();
          };
        },
        async close() {
          await redis.quit();
        },
      };
    },
  };
}
