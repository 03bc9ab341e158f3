import { LockManager } from '@deadbolt/core';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendOf, eventually, unique } from './helpers.js';

let server: RedisServer;
const clients: Redis[] = [];
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.stop();
});

function client(): Redis {
  const redis = new Redis(server.url);
  clients.push(redis);
  return redis;
}

/** Blocks this thread, timers and I/O included, as a long synchronous section or a GC pause does. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('a waiter whose event loop stalls while it is handed the lock', () => {
  it('never takes the stale grant for a lease that ended meanwhile: one holder, and its lease end no later than the server', async () => {
    const key = unique('paused');
    const prefix = 'paused';
    const holderSide = new LockManager({ backend: backendOf(client(), prefix) });
    const waiterSide = new LockManager({ backend: backendOf(client(), prefix) });
    // A third process whose requests the server runs only once BLPOP lets its connection go.
    const laterRedis = client();
    const laterSide = new LockManager({ backend: backendOf(laterRedis, prefix) });
    const inspector = backendOf(client(), prefix);

    // Every script the server runs below already loaded: a first EVALSHA would need a second trip.
    await (await holderSide.acquire(unique('warm-up'))).release();
    const holder = await holderSide.acquire(key, { ttl: 60_000 });
    const waiting = waiterSide.acquire(key, { ttl: 1_000, wait: 20_000 });
    // The waiter has its place (and so asks to be handed the lock, for its TTL of 1 s) and listens.
    await eventually('the waiter queues and listens', async () => {
      const [, listeners] = (await server.call('PUBSUB', 'NUMSUB', inspector.lockKey(key))) as [
        string,
        number,
      ];
      return (await inspector.inspection.inspect({ key: key }))?.queued === 1 && listeners === 1;
    });

    // Sent now, run by the server while this thread is frozen: the release hands the lock to the
    // waiter, whose news waits unread; 1.3 s later, once that 1 s lease ended, the third
    // process takes the lock for a minute. This code runs right after a reply was read (a poll
    // callback): when the freeze ends, the waiter's overdue timer runs before the news is read,
    // and the waiter asks again first, as it would after any long synchronous section.
    await laterRedis.ping();
    void holder.release();
    void laterRedis.blpop(`${key}:never`, 1.3);
    const later = laterSide.tryAcquire(key, { ttl: 60_000 });
    freeze(3_000);

    const taken = await later;
    expect(taken?.held).toBe(true);
    // The waiter asks again, is refused, and then reads the old news: it must not believe it.
    setTimeout(() => void taken?.release(), 500);
    const lock = await waiting;
    // Whatever it got, it holds it by the server's account too, for no longer than it thinks.
    expect(lock.held).toBe(true);
    const info = await inspector.inspection.inspect({ key: key });
    expect(info?.holders).toHaveLength(1);
    expect(info?.fence).toBe(lock.fence);
    expect(lock.fence).toBeGreaterThan(taken?.fence ?? Number.POSITIVE_INFINITY);
    expect(lock.expiresAt - Date.now()).toBeLessThanOrEqual(info?.holders[0]?.ttlMs ?? 0);
    await lock.release();
  });
});
