import { Redlock, ResourceLockedError } from '@sesamecare-oss/redlock';
import { Redis } from 'ioredis';
import { type Contender, LEASE_MS } from './types.js';

/** Settings of `@sesamecare-oss/redlock` that differ from its defaults (as redlock's). */
export interface SesamecareVariant {
  retryCount?: number;
}

/**
 * `@sesamecare-oss/redlock` 1.4.0 (the maintained fork of redlock 5) on one ioredis client, with
 * the `error` listener its README asks for.
 */
export function sesamecareContender(variant: SesamecareVariant = {}): Contender {
  const custom = variant.retryCount !== undefined;
  return {
    id: custom ? `sesamecare-redlock-retry${variant.retryCount}` : 'sesamecare-redlock',
    label: custom
      ? `@sesamecare-oss/redlock (retryCount: ${variant.retryCount})`
      : '@sesamecare-oss/redlock',
    library: '@sesamecare-oss/redlock 1.4.0, ioredis 5.9.3',
    settings: custom ? `retryCount: ${variant.retryCount}` : 'defaults',
    role: 'peer',
    usesRedis: true,
    async open(redisUrl) {
      const redis = new Redis(redisUrl);
      await redis.ping();
      const redlock = new Redlock([redis], variant);
      redlock.on('error', (error: unknown) => {
        if (error instanceof ResourceLockedError) return;
        console.error('[bench] @sesamecare-oss/redlock:', error);
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
