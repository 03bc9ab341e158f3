import { Redis } from 'ioredis';
import { Mutex } from 'redis-semaphore';
import type { Contender } from './types.js';

/**
 * `redis-semaphore` 5.8.0's `Mutex` on one ioredis client, with its defaults: lockTimeout 10 s
 * (refreshed every 8 s), acquireTimeout 10 s, retryInterval 10 ms. One `Mutex` per acquisition,
 * as its README shows.
 */
export const redisSemaphore: Contender = {
  id: 'redis-semaphore',
  label: 'redis-semaphore Mutex',
  library: 'redis-semaphore 5.8.0, ioredis 5.9.3',
  settings: 'defaults',
  role: 'peer',
  usesRedis: true,
  async open(redisUrl) {
    const redis = new Redis(redisUrl);
    await redis.ping();
    return {
      async acquire(key) {
        const mutex = new Mutex(redis, key);
        await mutex.acquire();
        return () => mutex.release();
      },
      async close() {
        await redis.quit();
      },
    };
  },
};
