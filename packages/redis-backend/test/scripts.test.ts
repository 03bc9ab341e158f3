import { BackendError, InvalidArgumentError } from '@deadbolt/core';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  lockKey,
  type RedisBackend,
  runScript,
  type ScriptTransport,
  scripts,
} from '../src/index.js';
import {
  backendOf,
  countingTransport,
  mutex,
  serverMs,
  sleep,
  transportOf,
  unique,
} from './helpers.js';

let server: RedisServer;
let client: Redis;
let backend: RedisBackend;

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.url);
  client.on('error', () => undefined);
  backend = backendOf(client);
});

afterAll(async () => {
  await backend?.close();
  client?.disconnect();
  await server?.stop();
});

/** The hash of `key` under the `scripts` prefix. */
const hashOf = (key: string) => lockKey('scripts', key);
/** How long a lock's hash outlives its last lease, plus the slack that spares renewing it on every grant. */
const GRACE_MS = 3_600_000;
const SLACK_MS = 300_000;
/** When a Redis key expires, absolute (PEXPIRETIME), so a slow machine cannot skew a comparison. */
const expiresAt = async (name: string) => Number(await client.call('PEXPIRETIME', name));
/** The holder fields of a lock's hash: `#` and the token. */
const holderFields = async (key: string) =>
  (await client.hkeys(hashOf(key))).filter((field) => field.startsWith('#')).sort();

/** A TIME reply as milliseconds, as the scripts compute it. */
const timeMs = (reply: unknown) => {
  const [seconds, micros] = reply as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
};

describe('expiry', () => {
  it('ends a lease at the exact server millisecond it expires, never before', async () => {
    expect(await client.script('LOAD', scripts.acquire.source)).toBe(scripts.acquire.sha);
    expect(await client.script('LOAD', scripts.inspect.source)).toBe(scripts.inspect.sha);
    let sawLastMillisecond = false;
    let sawExpiry = false;
    // Each round is one MULTI: TIME, a grant of a 2 ms lease, TIME, then inspect and acquire by
    // another token again and again, a TIME after each pair. The server runs a MULTI without a
    // pause, so its samples cover the lease's end however slow this process is. Only brackets that
    // fall inside one server millisecond are judged: then the scripts' own TIME is known exactly.
    // Sampling needs a few rounds; the verdicts don't.
    const samples = 300;
    for (let round = 0; round < 50 && !(sawLastMillisecond && sawExpiry); round++) {
      const key = unique('boundary');
      const multi = client
        .multi()
        .time()
        .evalsha(scripts.acquire.sha, 1, hashOf(key), 'old', '2')
        .time();
      for (let sample = 0; sample < samples; sample++) {
        multi
          .evalsha(scripts.inspect.sha, 1, hashOf(key))
          .evalsha(scripts.acquire.sha, 1, hashOf(key), 'new', '10000')
          .time();
      }
      const results = await multi.exec();
      if (results === null) throw new Error('MULTI was aborted');
      for (const [error] of results) expect(error).toBeNull();
      const reply = (index: number) => results[index]?.[1];
      expect((reply(1) as number[])[0]).toBe(1);
      const plantedFrom = timeMs(reply(0));
      let before = timeMs(reply(2));
      if (before !== plantedFrom) continue;
      const end = plantedFrom + 2;
      for (let sample = 0; sample < samples; sample++) {
        const inspected = reply(3 + sample * 3) as unknown[];
        const acquired = reply(4 + sample * 3) as number[];
        const after = timeMs(reply(5 + sample * 3));
        if (acquired[0] === 1) {
          // Never granted while the old lease could still run.
          expect(after).toBeGreaterThanOrEqual(end);
          if (before === end && after === end) {
            expect(inspected.slice(2)).toEqual([]);
            sawExpiry = true;
          }
          break;
        }
        // Refused: the old lease must still have been running.
        expect(before).toBeLessThan(end);
        if (before === after) {
          expect(acquired).toEqual([0, end - before]);
          expect(inspected.slice(2)).toEqual(['old', 1, end - before, '']);
          if (before === end - 1) sawLastMillisecond = true;
        }
        before = after;
      }
    }
    expect({ sawLastMillisecond, sawExpiry }).toEqual({
      sawLastMillisecond: true,
      sawExpiry: true,
    });
  });

  it('prunes expired holders before deciding', async () => {
    const key = unique('prune');
    const limit = { key, limit: 3, weight: 1 };
    expect((await backend.acquire({ ...limit, token: 'a', ttlMs: 30 })).ok).toBe(true);
    expect((await backend.acquire({ ...limit, token: 'b', ttlMs: 30 })).ok).toBe(true);
    expect((await backend.acquire({ ...limit, token: 'c', ttlMs: 10_000 })).ok).toBe(true);
    await sleep(60);
    // The expired ones no longer count: a weight of 2 fits next to c.
    expect((await backend.acquire({ ...limit, token: 'd', ttlMs: 10_000, weight: 2 })).ok).toBe(
      true,
    );
    expect(await holderFields(key)).toEqual(['#c', '#d']);
  });

  it('prunes thousands of expired holders in one request', async () => {
    // More than one unpack() of Lua can take at once.
    const key = unique('prune-many');
    const fields = Array.from({ length: 2_500 }, (_, index) => [`#r${index}`, '1']).flat();
    await client.hset(hashOf(key), ...fields);
    expect(
      (await backend.acquire({ key, token: 'w', ttlMs: 10_000, limit: 10, weight: 10 })).ok,
    ).toBe(true);
    expect(await holderFields(key)).toEqual(['#w']);
  });

  it('keeps the hash an hour past its last lease, renewing its expiry only when that is due', async () => {
    const key = unique('ttl');
    const lease = async () => Number((await client.hget(hashOf(key), '#a'))?.split(' ')[0]);
    // Long enough to still run at the extend below, nine round trips later on a loaded machine.
    await backend.acquire({ key, token: 'a', ttlMs: 10_000, limit: 2, weight: 1 });
    const first = await lease();
    expect(await expiresAt(hashOf(key))).toBe(first + GRACE_MS + SLACK_MS);
    expect(Number(await client.hget(hashOf(key), 'kept'))).toBe(first + GRACE_MS + SLACK_MS);
    // A longer lease still inside the slack leaves the expiry alone.
    await backend.acquire({ key, token: 'b', ttlMs: 60_000, limit: 2, weight: 1 });
    expect(await expiresAt(hashOf(key))).toBe(first + GRACE_MS + SLACK_MS);
    // One past it moves the expiry, and so does extending past it.
    await backend.acquire({ key, token: 'c', ttlMs: 1_000_000, limit: 3, weight: 1 });
    const long = Number(await client.hget(hashOf(key), '#c'));
    expect(await expiresAt(hashOf(key))).toBe(long + GRACE_MS + SLACK_MS);
    expect(await backend.extend({ key, token: 'a', ttlMs: 2_000_000 })).toBe(true);
    expect(await expiresAt(hashOf(key))).toBe((await lease()) + GRACE_MS + SLACK_MS);
    // Releasing and expiring never shorten it: the fence must outlive every lease.
    expect(await backend.release({ key, token: 'a' })).toBe(true);
    expect(await expiresAt(hashOf(key))).toBeGreaterThan(long + GRACE_MS);
  });
});

describe('a free key', () => {
  it('takes one hash holding the holder, the fence and its expiry, and nothing else', async () => {
    const key = unique('fast');
    const granted = await backend.acquire(mutex(key, 'a', 5_000));
    if (!granted.ok) throw new Error('expected a grant');
    expect(await client.keys(`${hashOf(key)}*`)).toEqual([hashOf(key)]);
    const stored = await client.hgetall(hashOf(key));
    expect(Object.keys(stored).sort()).toEqual(['#a', 'fence', 'kept']);
    expect(Number(stored.fence)).toBe(granted.fence);
    // A weight of 1 is stored as the lease end alone.
    expect(stored['#a']).toMatch(/^\d+$/);
  });

  it('is taken again through the hash a release leaves, by a queued request that stores no place', async () => {
    const key = unique('idle');
    const first = await backend.acquire(mutex(key, 'a'));
    expect(await backend.release({ key, token: 'a' })).toBe(true);
    expect(Object.keys(await client.hgetall(hashOf(key))).sort()).toEqual(['fence', 'kept']);
    const again = await backend.queue.acquire({
      ...mutex(key, 'b'),
      owner: 'worker 7',
      placeTtlMs: 10_000,
      handoff: { attempt: 3, ttlMs: 10_000 },
    });
    if (!first.ok || !again.ok) throw new Error('expected grants');
    expect(again.fence).toBeGreaterThan(first.fence);
    const stored = await client.hgetall(hashOf(key));
    expect(Object.keys(stored).sort()).toEqual(['#b', 'fence', 'kept']);
    expect(stored['#b']).toMatch(/^\d+ 1 worker 7$/);
    // A weight its own limit cannot hold is refused on a free key too, and queues when asked.
    const idle = unique('idle-too-heavy');
    // (Backends refuse such a request before sending it, so the script is run directly.)
    const transport = transportOf(client);
    // Token, TTL, no owner, limit 1, weight 2, then the place TTL.
    const heavy = (placeTtlMs: string) =>
      runScript(
        transport,
        scripts.acquire,
        [hashOf(idle)],
        ['h', '10000', '', '1', '2', placeTtlMs],
      );
    expect(await heavy('0')).toEqual([0, -1]);
    expect(await client.exists(hashOf(idle))).toBe(0);
    expect(await heavy('10000')).toEqual([0, -1]);
    expect(Object.keys(await client.hgetall(hashOf(idle))).sort()).toEqual([
      '?h',
      'kept',
      'queued',
    ]);
  });

  it('drops a queued mark that no place backs when granting', async () => {
    const key = unique('stale-mark');
    await client.hset(hashOf(key), 'fence', '5', 'queued', '1');
    const granted = await backend.acquire(mutex(key, 'a'));
    if (!granted.ok) throw new Error('expected a grant');
    expect(granted.fence).toBeGreaterThan(5);
    expect(Object.keys(await client.hgetall(hashOf(key))).sort()).toEqual(['#a', 'fence', 'kept']);
  });

  it('is not taken while anyone queues: an unqueued request waits behind the queue', async () => {
    const key = unique('fast-queue');
    expect((await backend.acquire(mutex(key, 'holder'))).ok).toBe(true);
    // A queued waiter refused behind the holder keeps its place after the holder leaves.
    expect((await backend.queue.acquire({ ...mutex(key, 'queued'), placeTtlMs: 10_000 })).ok).toBe(
      false,
    );
    expect(await backend.release({ key, token: 'holder' })).toBe(true);
    expect(await holderFields(key)).toEqual([]);
    expect((await backend.acquire(mutex(key, 'barging'))).ok).toBe(false);
    expect((await backend.queue.acquire({ ...mutex(key, 'queued'), placeTtlMs: 10_000 })).ok).toBe(
      true,
    );
    expect((await client.hkeys(hashOf(key))).filter((field) => field.startsWith('?'))).toEqual([]);
  });

  it('is taken past a queue place that ran out', async () => {
    const key = unique('place-out');
    // The place must outlast the two calls after it on a loaded machine, where one round trip
    // can take tens of milliseconds.
    const placeTtlMs = 500;
    expect((await backend.acquire(mutex(key, 'holder'))).ok).toBe(true);
    expect((await backend.queue.acquire({ ...mutex(key, 'gone'), placeTtlMs })).ok).toBe(false);
    const placeEndsBy = (await serverMs(client)) + placeTtlMs;
    expect(await backend.release({ key, token: 'holder' })).toBe(true);
    expect((await backend.acquire(mutex(key, 'barging'))).ok).toBe(false);
    while ((await serverMs(client)) < placeEndsBy) await sleep(10);
    expect((await backend.acquire(mutex(key, 'barging'))).ok).toBe(true);
    expect(await client.hexists(hashOf(key), '?gone')).toBe(0);
  });

  it('is not taken while an expired holder is still stored: release reports it as not held', async () => {
    const key = unique('fast-expired');
    await backend.acquire({ key, token: 'expired', ttlMs: 20, limit: 2, weight: 1 });
    await backend.acquire({ key, token: 'running', ttlMs: 10_000, limit: 2, weight: 1 });
    await sleep(40);
    expect(await backend.release({ key, token: 'expired' })).toBe(false);
    expect(
      (await backend.acquire({ key, token: 'new', ttlMs: 10_000, limit: 2, weight: 1 })).ok,
    ).toBe(true);
    expect(
      (await backend.acquire({ key, token: 'full', ttlMs: 10_000, limit: 2, weight: 1 })).ok,
    ).toBe(false);
  });
});

describe('fences', () => {
  it('strictly increase over every grant, from the server clock in µs', async () => {
    const key = unique('fences');
    const startedMicros = (await serverMs(client)) * 1000;
    const fences: number[] = [];
    for (let index = 0; index < 30; index++) {
      const granted = await backend.acquire({
        key,
        token: `t${index}`,
        ttlMs: 10_000,
        limit: 3,
        weight: 1,
      });
      if (!granted.ok) throw new Error(`grant ${index} refused`);
      fences.push(granted.fence);
      if (index % 3 === 2) {
        for (const token of [`t${index}`, `t${index - 1}`, `t${index - 2}`]) {
          expect(await backend.release({ key, token })).toBe(true);
        }
      }
    }
    expect(fences[0]).toBeGreaterThanOrEqual(startedMicros);
    for (let index = 1; index < fences.length; index++) {
      expect(fences[index]).toBeGreaterThan(fences[index - 1] as number);
    }
    await backend.acquire(mutex(key, 'last'));
    expect((await backend.inspection.inspect({ key: key }))?.fence).toBeGreaterThan(
      fences.at(-1) as number,
    );
  });

  it('keep increasing when the hash is gone, as after its grace period', async () => {
    const key = unique('fence-gone');
    const first = await backend.acquire(mutex(key, 'a'));
    await backend.release({ key, token: 'a' });
    await client.del(hashOf(key));
    const second = await backend.acquire(mutex(key, 'b'));
    if (!first.ok || !second.ok) throw new Error('expected grants');
    expect(second.fence).toBeGreaterThan(first.fence);
  });

  it('keep increasing after the server restarts empty', async () => {
    const own = await startRedis();
    const ownClient = new Redis(own.url, { maxRetriesPerRequest: 50 });
    ownClient.on('error', () => undefined);
    const ownBackend = backendOf(ownClient);
    try {
      const first = await ownBackend.acquire(mutex('restart', 'a'));
      await own.restart();
      expect(await own.call('DBSIZE')).toBe(0);
      const second = await ownBackend.acquire(mutex('restart', 'b'));
      if (!first.ok || !second.ok) throw new Error('expected grants');
      expect(second.fence).toBeGreaterThan(first.fence);
    } finally {
      ownClient.disconnect();
      await own.stop();
    }
  });

  it('jump past a fence granted elsewhere (advanceFence)', async () => {
    const key = unique('advance');
    const first = await backend.acquire(mutex(key, 'a'));
    if (!first.ok) throw new Error('expected a grant');
    const elsewhere = first.fence + 10_000_000_000;
    await backend.fences.advance({ key, fence: elsewhere });
    await backend.fences.advance({ key, fence: first.fence });
    await backend.release({ key, token: 'a' });
    const second = await backend.acquire(mutex(key, 'b'));
    if (!second.ok) throw new Error('expected a grant');
    expect(second.fence).toBe(elsewhere + 1);
  });
});

describe('acquire', () => {
  it('counts weights, and replaces the grant of a token asking again', async () => {
    const request = { key: unique('weights'), ttlMs: 10_000, limit: 5 };
    expect((await backend.acquire({ ...request, token: 'a', weight: 3 })).ok).toBe(true);
    expect((await backend.acquire({ ...request, token: 'b', weight: 3 })).ok).toBe(false);
    expect((await backend.acquire({ ...request, token: 'b', weight: 2 })).ok).toBe(true);
    expect((await backend.acquire({ ...request, token: 'c', weight: 1 })).ok).toBe(false);
    // a asks again with less: its own grant does not count against it, and is replaced.
    expect((await backend.acquire({ ...request, token: 'a', weight: 1 })).ok).toBe(true);
    expect((await backend.acquire({ ...request, token: 'c', weight: 2 })).ok).toBe(true);
    const holders = (await backend.inspection.inspect({ key: request.key }))?.holders ?? [];
    expect(holders.map(({ token, weight }) => [token, weight]).sort()).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 2],
    ]);
  });

  it('grants a holder asking again (its reply may have been lost) a new lease and fence', async () => {
    const key = unique('again');
    const first = await backend.acquire(mutex(key, 'a', 1_000));
    const again = await backend.acquire(mutex(key, 'a', 20_000));
    if (!first.ok || !again.ok) throw new Error('expected grants');
    expect(again.fence).toBeGreaterThan(first.fence);
    const info = await backend.inspection.inspect({ key: key });
    expect(info?.holders).toHaveLength(1);
    expect(info?.holders[0]?.ttlMs).toBeGreaterThan(1_000);
  });

  it('hints how long until the earliest other holder expires', async () => {
    const key = unique('retry');
    // Leases far apart, so a slow machine cannot blur which one the hint names.
    await backend.acquire({ key, token: 'soon', ttlMs: 20_000, limit: 2, weight: 1 });
    await backend.acquire({ key, token: 'late', ttlMs: 60_000, limit: 2, weight: 1 });
    const refused = await backend.acquire({ key, token: 'x', ttlMs: 10, limit: 2, weight: 1 });
    if (refused.ok || refused.retryInMs === undefined) throw new Error('expected a hint');
    expect(refused.retryInMs).toBeGreaterThan(10_000);
    expect(refused.retryInMs).toBeLessThanOrEqual(20_000);
    // The asker's own lease is no reason to wait: the hint skips it.
    const own = await backend.acquire({ key, token: 'soon', ttlMs: 10, limit: 2, weight: 2 });
    if (own.ok || own.retryInMs === undefined) throw new Error('expected a hint');
    expect(own.retryInMs).toBeGreaterThan(40_000);
  });

  it('never splices user strings into Lua: a key and token full of Lua are just data', async () => {
    const key = "']]; redis.call('FLUSHALL') --[[";
    const token = "\"); redis.call('FLUSHALL'); --";
    await client.set(unique('canary'), '1');
    expect((await backend.acquire(mutex(key, token))).ok).toBe(true);
    expect((await backend.inspection.inspect({ key: key }))?.holders[0]?.token).toBe(token);
    expect(await backend.release({ key, token })).toBe(true);
    expect(await client.dbsize()).toBeGreaterThan(0);
  });
});

describe('extend', () => {
  it('resets the lease of a holder from now, longer or shorter', async () => {
    const key = unique('extend');
    await backend.acquire(mutex(key, 'a', 5_000));
    expect(await backend.extend({ key, token: 'a', ttlMs: 20_000 })).toBe(true);
    expect((await backend.inspection.inspect({ key: key }))?.holders[0]?.ttlMs).toBeGreaterThan(
      19_000,
    );
    expect(await backend.extend({ key, token: 'a', ttlMs: 300 })).toBe(true);
    expect((await backend.inspection.inspect({ key: key }))?.holders[0]?.ttlMs).toBeLessThanOrEqual(
      300,
    );
    await sleep(350);
    expect((await backend.acquire(mutex(key, 'b'))).ok).toBe(true);
  });

  it('keeps the weight of the holder it extends', async () => {
    const key = unique('extend-weight');
    await backend.acquire({ key, token: 'a', ttlMs: 5_000, limit: 3, weight: 2 });
    expect(await backend.extend({ key, token: 'a', ttlMs: 20_000 })).toBe(true);
    expect((await backend.inspection.inspect({ key: key }))?.holders).toEqual([
      { token: 'a', weight: 2, ttlMs: expect.any(Number) },
    ]);
    expect((await backend.acquire({ key, token: 'b', ttlMs: 5_000, limit: 3, weight: 2 })).ok).toBe(
      false,
    );
  });

  it('refuses tokens that do not hold, or no longer do', async () => {
    const key = unique('extend-lost');
    expect(await backend.extend({ key, token: 'nobody', ttlMs: 1_000 })).toBe(false);
    await backend.acquire(mutex(key, 'a', 30));
    expect(await backend.extend({ key, token: 'b', ttlMs: 1_000 })).toBe(false);
    await sleep(60);
    expect(await backend.extend({ key, token: 'a', ttlMs: 1_000 })).toBe(false);
    expect(await holderFields(key)).toEqual([]);
  });
});

/**
 * Runs `body` while listening on the lock channel of `key`, and returns every message it saw
 * there, in order (a marker published last shows that all of them have arrived).
 */
async function messagesDuring(key: string, body: () => Promise<void>): Promise<string[]> {
  const subscriber = client.duplicate();
  const messages: string[] = [];
  subscriber.on('message', (_channel: string, message: string) => messages.push(message));
  await subscriber.subscribe(hashOf(key));
  try {
    await body();
    // Messages from one connection arrive in order: this one marks the end.
    await client.publish(hashOf(key), 'end');
    await eventuallyEquals(() => messages.at(-1), 'end');
    return messages.slice(0, -1);
  } finally {
    subscriber.disconnect();
  }
}

describe('release', () => {
  it('publishes on the lock channel only when it freed something', async () => {
    const key = unique('publish');
    const messages = await messagesDuring(key, async () => {
      expect(await backend.release({ key, token: 'nobody' })).toBe(false);
      await backend.acquire(mutex(key, 'holder'));
      expect(await backend.release({ key, token: 'other' })).toBe(false);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      expect(await backend.release({ key, token: 'holder' })).toBe(false);
      // An expired lease frees nothing and wakes nobody.
      await backend.acquire(mutex(key, 'expired', 20));
      await sleep(40);
      expect(await backend.release({ key, token: 'expired' })).toBe(false);
    });
    expect(messages).toEqual(['released']);
  });

  it('hands the lock to the head of the queue for the lease it asked to be handed, announcing it to that token alone', async () => {
    const key = unique('handoff');
    const messages = await messagesDuring(key, async () => {
      await backend.acquire(mutex(key, 'holder'));
      const waiter = {
        ...mutex(key, 'tök en', 60_000),
        placeTtlMs: 10_000,
        handoff: { attempt: 3, ttlMs: 7_000 },
      };
      expect((await backend.queue.acquire(waiter)).ok).toBe(false);
      expect(await client.hget(hashOf(key), 'queued')).toBe('1');
      await sleep(20);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
    });
    // It took all there was: nobody else is woken.
    expect(messages).toHaveLength(1);
    const [word, fence, ttlMs, afterMs, attempt, ...token] = (messages[0] as string).split(' ');
    expect([word, ttlMs, attempt, token.join(' ')]).toEqual(['granted', '7000', '3', 'tök en']);
    expect(Number(afterMs)).toBeGreaterThanOrEqual(18);
    expect(Number(fence)).toBe((await backend.inspection.inspect({ key: key }))?.fence);
    expect(await holderFields(key)).toEqual(['#tök en']);
    // The lease is the 7 s asked for on handoff, not the 60 s of the request.
    expect((await backend.inspection.inspect({ key: key }))?.holders[0]?.ttlMs).toBeLessThanOrEqual(
      7_000,
    );
    // The queue is empty again: the next release has nobody to look for.
    expect(await client.hexists(hashOf(key), 'queued')).toBe(0);
  });

  it('hands a semaphore to every head that fits, in arrival order, with one fence each', async () => {
    const key = unique('handoff-many');
    const permits = { key, ttlMs: 10_000, limit: 3 };
    const queued = (token: string, weight: number) =>
      backend.queue.acquire({
        ...permits,
        token,
        weight,
        placeTtlMs: 10_000,
        handoff: { attempt: 1, ttlMs: 10_000 },
      });
    let fenceBefore = 0;
    const messages = await messagesDuring(key, async () => {
      await backend.acquire({ ...permits, token: 'all', weight: 3 });
      for (const [token, weight] of [
        ['one', 1],
        ['two', 1],
        ['big', 2],
        ['last', 1],
      ] as const) {
        expect((await queued(token, weight)).ok).toBe(false);
      }
      fenceBefore = (await backend.inspection.inspect({ key: key }))?.fence ?? 0;
      expect(await backend.release({ key, token: 'all' })).toBe(true);
    });
    // 'big' does not fit next to 'one' and 'two', and 'last' may not pass it: one permit stays
    // free, so everyone else hears of the release too.
    const grants = messages.filter((message) => message.startsWith('granted '));
    expect(grants.map((message) => message.split(' ').slice(5).join(' '))).toEqual(['one', 'two']);
    const fences = grants.map((message) => Number(message.split(' ')[1]));
    expect(fences[0]).toBeGreaterThan(fenceBefore);
    expect(fences[1]).toBeGreaterThan(fences[0] as number);
    expect(messages.at(-1)).toBe('released');
    expect(await holderFields(key)).toEqual(['#one', '#two']);
    expect(await client.hexists(hashOf(key), 'queued')).toBe(1);
  });

  it('gives up a queue place, and tells the next in line', async () => {
    const key = unique('leave-queue');
    const queued = (token: string) =>
      backend.queue.acquire({ ...mutex(key, token), placeTtlMs: 10_000 });
    const messages = await messagesDuring(key, async () => {
      await backend.acquire(mutex(key, 'holder'));
      expect((await queued('first')).ok).toBe(false);
      expect((await queued('second')).ok).toBe(false);
      expect(await backend.release({ key, token: 'holder' })).toBe(true);
      expect((await queued('second')).ok).toBe(false);
      // The head leaves without taking it: holding nothing, it still frees the way.
      expect(await backend.release({ key, token: 'first' })).toBe(false);
      expect((await queued('second')).ok).toBe(true);
    });
    expect(messages).toEqual(['released', 'released']);
  });

  it('gives back only what the token held', async () => {
    const key = unique('release-weight');
    const request = { key, ttlMs: 10_000, limit: 4 };
    await backend.acquire({ ...request, token: 'a', weight: 3 });
    await backend.acquire({ ...request, token: 'b', weight: 1 });
    expect(await backend.release({ key, token: 'a' })).toBe(true);
    expect((await backend.acquire({ ...request, token: 'c', weight: 3 })).ok).toBe(true);
    expect((await backend.acquire({ ...request, token: 'd', weight: 1 })).ok).toBe(false);
  });
});

describe('inspect', () => {
  it('shows unexpired holders with weights and remaining ms, and the last fence', async () => {
    const key = unique('inspect');
    expect(await backend.inspection.inspect({ key: key })).toBeNull();
    await backend.acquire({ key, token: 'a', ttlMs: 5_000, limit: 3, weight: 2 });
    const last = await backend.acquire({ key, token: 'b', ttlMs: 1_000, limit: 3, weight: 1 });
    if (!last.ok) throw new Error('expected a grant');
    const info = await backend.inspection.inspect({ key: key });
    expect(info).toMatchObject({ key, fence: last.fence, queued: 0 });
    expect(info?.holders.map(({ token, weight }) => [token, weight]).sort()).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect(info?.holders.find((holder) => holder.token === 'a')?.ttlMs).toBeGreaterThan(4_000);
    await sleep(1_100);
    expect(
      (await backend.inspection.inspect({ key: key }))?.holders.map((holder) => holder.token),
    ).toEqual(['a']);
    await backend.release({ key, token: 'a' });
    expect(await backend.inspection.inspect({ key: key })).toBeNull();
  });
});

describe('the runner', () => {
  it('falls back to EVAL after SCRIPT FLUSH, which reloads the script', async () => {
    const transport = countingTransport(transportOf(client));
    const flushed = backendOf(client, 'scripts', transport);
    const key = unique('flush');
    await client.script('FLUSH');
    expect(await client.script('EXISTS', scripts.acquire.sha)).toEqual([0]);
    expect((await flushed.acquire(mutex(key, 'a'))).ok).toBe(true);
    expect(transport.calls).toEqual({ evalsha: 1, eval: 1 });
    expect(await client.script('EXISTS', scripts.acquire.sha)).toEqual([1]);
    expect(await flushed.release({ key, token: 'a' })).toBe(true);
    await flushed.acquire(mutex(key, 'b'));
    // release was loaded by its own fallback; acquire is now served by EVALSHA alone.
    expect(transport.calls).toEqual({ evalsha: 3, eval: 2 });
  });

  it('passes other errors through without trying EVAL', async () => {
    // Loaded first, so that EVALSHA finds it.
    await runScript(transportOf(client), scripts.extend, [hashOf('x')], ['t', '1000']);
    const transport = countingTransport(transportOf(client));
    // No keys: the script fails inside Redis, which is no reason to send its source.
    await expect(runScript(transport, scripts.extend, [], ['t', '1000'])).rejects.toThrow();
    expect(transport.calls.eval).toBe(0);
  });

  it('wraps client failures in BackendError naming the client', async () => {
    const dead = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false });
    dead.on('error', () => undefined);
    const broken = backendOf(dead);
    const attempt = broken.acquire(mutex('k', 't'));
    await expect(attempt).rejects.toBeInstanceOf(BackendError);
    await expect(broken.extend({ key: 'k', token: 't', ttlMs: 1 })).rejects.toThrow(/\[test\]/);
    await expect(broken.release({ key: 'k', token: 't' })).rejects.toBeInstanceOf(BackendError);
    await expect(broken.inspection.inspect({ key: 'k' })).rejects.toBeInstanceOf(BackendError);
    dead.disconnect();
  });

  it('validates every request before any I/O', async () => {
    const transport = countingTransport(transportOf(client));
    const checked = backendOf(client, 'scripts', transport);
    const good = mutex('k', 't');
    const bad: [string, () => Promise<unknown>][] = [
      ['request.key', () => checked.acquire({ ...good, key: '' })],
      ['request.ttlMs', () => checked.acquire({ ...good, ttlMs: 0 })],
      ['request.weight', () => checked.acquire({ ...good, weight: 2 })],
      ['request.limit', () => checked.acquire({ ...good, limit: 1.5 })],
      ['request.token', () => checked.acquire({ ...good, token: '' })],
      ['request.ttlMs', () => checked.extend({ key: 'k', token: 't', ttlMs: Number.NaN })],
      ['request.key', () => checked.release({ key: 'x'.repeat(600), token: 't' })],
      ['request.fence', () => checked.fences.advance({ key: 'k', fence: -1 })],
      ['request.key', () => checked.inspection.inspect({ key: '' })],
      [
        'request.key',
        () => checked.wakeUps.waitForRelease({ key: '', signal: new AbortController().signal }),
      ],
    ];
    for (const [argument, call] of bad) {
      const error = await call().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).argument).toBe(argument);
    }
    expect(transport.calls).toEqual({ evalsha: 0, eval: 0 });
  });
});

describe('reply decoding', () => {
  /** Runs the commands with ioredis's Buffer variant: every bulk string arrives as bytes. */
  const bufferTransport: ScriptTransport = {
    evalsha: (sha, keys, args) => client.callBuffer('EVALSHA', sha, keys.length, ...keys, ...args),
    eval: (source, keys, args) => client.callBuffer('EVAL', source, keys.length, ...keys, ...args),
  };
  /** As a client whose type mapping turns integers into strings. */
  const stringTransport: ScriptTransport = {
    evalsha: async (sha, keys, args) =>
      stringify(await client.evalsha(sha, keys.length, ...keys, ...args)),
    eval: async (source, keys, args) =>
      stringify(await client.eval(source, keys.length, ...keys, ...args)),
  };
  const stringify = (reply: unknown): unknown =>
    Array.isArray(reply) ? reply.map(stringify) : typeof reply === 'number' ? String(reply) : reply;

  it.each([
    ['Buffers', bufferTransport],
    ['strings', stringTransport],
  ])('copes with %s', async (_, transport) => {
    const decoding = backendOf(client, 'scripts', transport);
    const key = unique('decode');
    const granted = await decoding.acquire({
      key,
      token: 'tök€n',
      ttlMs: 5_000,
      limit: 2,
      weight: 2,
    });
    if (!granted.ok) throw new Error('expected a grant');
    expect(granted.ttlMs).toBe(5_000);
    expect(Number.isSafeInteger(granted.fence)).toBe(true);
    expect(await decoding.acquire(mutex(key, 'other'))).toMatchObject({ ok: false });
    const info = await decoding.inspection.inspect({ key: key });
    expect(info?.fence).toBe(granted.fence);
    expect(info?.holders).toEqual([{ token: 'tök€n', weight: 2, ttlMs: expect.any(Number) }]);
    expect(await decoding.extend({ key, token: 'tök€n', ttlMs: 5_000 })).toBe(true);
    expect(await decoding.release({ key, token: 'tök€n' })).toBe(true);
  });
});

describe('keys on a real server', () => {
  it.each(['a key with spaces', 'clé-鍵-🔒', 'user:{42}', '}leading', '{', '{}', '%7B', '*?[x]'])(
    'locks %j like any other key',
    async (key) => {
      expect((await backend.acquire(mutex(key, 't'))).ok).toBe(true);
      expect(await client.type(hashOf(key))).toBe('hash');
      expect((await backend.acquire(mutex(key, 'u'))).ok).toBe(false);
      expect((await backend.inspection.inspect({ key: key }))?.key).toBe(key);
      expect(await backend.release({ key, token: 't' })).toBe(true);
    },
  );

  it('keeps prefixes apart', async () => {
    const key = unique('shared-name');
    const one = backendOf(client, 'one');
    const two = backendOf(client, 'one:two');
    expect((await one.acquire(mutex(key, 'a'))).ok).toBe(true);
    expect((await two.acquire(mutex(key, 'b'))).ok).toBe(true);
    expect(
      (await one.inspection.inspect({ key: key }))?.holders.map((holder) => holder.token),
    ).toEqual(['a']);
    expect(await two.release({ key, token: 'a' })).toBe(false);
    expect(await one.release({ key, token: 'a' })).toBe(true);
    expect(
      (await two.inspection.inspect({ key: key }))?.holders.map((holder) => holder.token),
    ).toEqual(['b']);
  });
});

async function eventuallyEquals(read: () => unknown, expected: unknown): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (read() !== expected && Date.now() < deadline) await sleep(10);
  expect(read()).toBe(expected);
}
