import type { RedisOptions } from 'ioredis';

/**
 * For connections that must fail fast while their server is down: quorum members (with ioredis's
 * offline queue a request to a dead member would wait for the reconnection, and the quorum with
 * it) and the schedule checker's own reads (a read that waits out a restart proves nothing).
 */
export const FAIL_FAST: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 500,
  retryStrategy: () => 100,
};
