import { deadboltIoredis, deadboltIoredisRacing } from './deadbolt-ioredis.js';
import { deadboltMemory } from './deadbolt-memory.js';
import { deadboltNodeRedis } from './deadbolt-node-redis.js';
import { deadboltValkeyGlide } from './deadbolt-valkey-glide.js';
import { deadboltPostgres, rawPostgres } from './postgres.js';
import { raw, rawFenced } from './raw.js';
import { rawNodeRedis } from './raw-node-redis.js';
import { rawValkeyGlide } from './raw-valkey-glide.js';
import { redisSemaphore } from './redis-semaphore.js';
import { redlockContender } from './redlock.js';
import { sesamecareContender } from './sesamecare-redlock.js';
import type { Contender } from './types.js';

export { POSTGRES_URL_VARIABLE, usesPostgres } from './postgres.js';
export type { Contender, ContenderRole, LockClient, Release } from './types.js';

/**
 * Every row, in table order. The redlock libraries give up after 10 retries of 200 ± 100 ms by
 * default, which fails under 16-way contention, so each also runs with `retryCount: -1`
 * (retry forever, its documented setting for that).
 */
export const contenders: readonly Contender[] = [
  raw,
  rawNodeRedis,
  rawValkeyGlide,
  rawFenced,
  deadboltIoredis,
  deadboltIoredisRacing,
  deadboltNodeRedis,
  deadboltValkeyGlide,
  deadboltMemory,
  rawPostgres,
  deadboltPostgres,
  redlockContender(),
  redlockContender({ retryCount: -1 }),
  redisSemaphore,
  sesamecareContender(),
  sesamecareContender({ retryCount: -1 }),
];

/** Peers that could not run here, and why; printed with the results. */
export const absent: readonly { library: string; reason: string }[] = [
  {
    library: 'redlock-universal 0.8.5',
    reason:
      'requires Node >= 22 (`engines.node` ">=22.0.0"); this benchmark runs on the Node 20 the project supports',
  },
];

/** The contender with `id`; throws for an unknown one. */
export function contenderById(id: string): Contender {
  const found = contenders.find((contender) => contender.id === id);
  if (found === undefined) throw new Error(`[bench] unknown contender "${id}"`);
  return found;
}
