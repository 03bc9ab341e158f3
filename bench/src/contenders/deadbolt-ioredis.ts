import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';
import type { Contender } from './types.js';

/** deadbolt with the library's defaults, over an ioredis client. */
export const deadboltIoredis: Contender = {
  id: 'deadbolt-ioredis',
  label: 'deadbolt + ioredis',
  library: '@deadbolt/ioredis (workspace), ioredis 5.9.3',
  settings: 'defaults',
  role: 'deadbolt',
  usesRedis: true,
  async open(redisUrl) {
    const redis = new Redis(redisUrl);
    await redis.ping();
    const backend = new IoredisBackend(redis);
    const locks = new LockManager({ backend });
    return {
      async acquire(key) {
        const lock = await locks.acquire(key);
        return async () => {
          await lock.release();
        };
      },
      async close() {
        await backend.close();
        await redis.quit();
      },
    };
  },
};
