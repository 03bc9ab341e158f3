import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';
import { type Contender, managerClient } from './types.js';

/**
 * deadbolt over an ioredis client: with the library's defaults, or with `fair: false` (waiters
 * race for the lock instead of queueing and being handed it), the opt-out that the choice of
 * default is measured against.
 */
function deadboltIoredisContender(options: { fair?: false } = {}): Contender {
  const racing = options.fair === false;
  return {
    id: racing ? 'deadbolt-ioredis-racing' : 'deadbolt-ioredis',
    label: racing ? 'deadbolt + ioredis (fair: false)' : 'deadbolt + ioredis',
    library: '@deadbolt/ioredis (workspace), ioredis 5.9.3',
    settings: racing ? '`defaults: { fair: false }`' : 'defaults',
    role: racing ? 'option' : 'deadbolt',
    usesRedis: true,
    async open(redisUrl) {
      const redis = new Redis(redisUrl);
      await redis.ping();
      const backend = new IoredisBackend(redis);
      const locks = new LockManager({ backend, ...(racing ? { defaults: { fair: false } } : {}) });
      return managerClient(locks, async () => {
        await backend.close();
        await redis.quit();
      });
    },
  };
}

/** deadbolt with the library's defaults. */
export const deadboltIoredis = deadboltIoredisContender();
/** deadbolt with waiters racing for the lock (`fair: false`). */
export const deadboltIoredisRacing = deadboltIoredisContender({ fair: false });
