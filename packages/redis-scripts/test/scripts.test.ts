import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  lockKeys,
  RedisScriptBackend,
  ReleaseWaiters,
  runScript,
  type ScriptTransport,
  scripts,
} from '../src/index.js';

let server: RedisServer;
let client: Redis;
let backend: RedisScriptBackend;

function transportOf(redis: Redis): ScriptTransport {
  return {
    evalsha: (sha, keys, args) => redis.evalsha(sha, keys.length, ...keys, ...args),
    eval: (source, keys, args) => redis.eval(source, keys.length, ...keys, ...args),
  };
}

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.url);
  client.on('error', () => undefined);
  backend = new RedisScriptBackend(
    {
      name: 'test',
      transport: transportOf(client),
      openSubscriber: async () => {
        throw new Error('not needed');
      },
    },
    { prefix: 'scripts' },
  );
});

afterAll(async () => {
  client.disconnect();
  await server.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mutex = (key: string, token: string, ttlMs = 10_000) => ({
  key,
  token,
  ttlMs,
  limit: 1,
  weight: 1,
});

describe('the Lua scripts on a real server', () => {
  it('prune expired holders from both structures before deciding', async () => {
    const keys = lockKeys('scripts', 'prune');
    expect((await backend.acquire(mutex('prune', 'old', 50))).ok).toBe(true);
    await sleep(80);
    expect((await backend.acquire(mutex('prune', 'new'))).ok).toBe(true);
    expect(await client.zrange(keys.holders, 0, -1)).toEqual(['new']);
    expect(await client.hkeys(keys.weights)).toEqual(['new']);
  });

  it('let every key of a lock expire with its lease; the fence outlives it', async () => {
    const keys = lockKeys('scripts', 'ttl');
    await backend.acquire(mutex('ttl', 'a', 200));
    const holdersTtl = await client.pttl(keys.holders);
    expect(holdersTtl).toBeGreaterThan(0);
    expect(holdersTtl).toBeLessThanOrEqual(200);
    expect(await client.pttl(keys.fence)).toBeGreaterThan(3_000_000);
    await sleep(250);
    expect(await client.exists(keys.holders, keys.weights)).toBe(0);
  });

  it('keep fences increasing after the server restarts empty', async () => {
    const own = await startRedis();
    const ownClient = new Redis(own.url, { maxRetriesPerRequest: 50 });
    ownClient.on('error', () => undefined);
    const ownBackend = new RedisScriptBackend(
      {
        name: 'test',
        transport: transportOf(ownClient),
        openSubscriber: () => Promise.reject(new Error('unused')),
      },
      { prefix: 'scripts' },
    );
    try {
      const first = await ownBackend.acquire(mutex('restart', 'a'));
      await own.restart();
      const second = await ownBackend.acquire(mutex('restart', 'b'));
      if (!first.ok || !second.ok) throw new Error('expected grants');
      expect(second.fence).toBeGreaterThan(first.fence);
    } finally {
      ownClient.disconnect();
      await own.stop();
    }
  });

  it('publish on release only when it freed something', async () => {
    const subscriber = client.duplicate();
    const messages: string[] = [];
    subscriber.on('message', (_channel, message) => messages.push(message));
    await subscriber.subscribe(lockKeys('scripts', 'publish').channel);
    try {
      await backend.release({ key: 'publish', token: 'nobody' });
      await backend.acquire(mutex('publish', 'holder'));
      await backend.release({ key: 'publish', token: 'holder' });
      await sleep(50);
      expect(messages).toEqual(['released']);
    } finally {
      subscriber.disconnect();
    }
  });

  it('fall back to EVAL after SCRIPT FLUSH, which reloads the script', async () => {
    await client.script('FLUSH');
    expect(await client.script('EXISTS', scripts.inspect.sha)).toEqual([0]);
    const keys = lockKeys('scripts', 'flush');
    await runScript(
      transportOf(client),
      scripts.inspect,
      [keys.holders, keys.weights, keys.fence, keys.queue, keys.waiting],
      [],
    );
    expect(await client.script('EXISTS', scripts.inspect.sha)).toEqual([1]);
  });

  it('count weights, and replace the grant of a token asking again', async () => {
    const request = { key: 'weights', ttlMs: 10_000, limit: 5 };
    expect((await backend.acquire({ ...request, token: 'a', weight: 3 })).ok).toBe(true);
    expect((await backend.acquire({ ...request, token: 'b', weight: 3 })).ok).toBe(false);
    expect((await backend.acquire({ ...request, token: 'a', weight: 1 })).ok).toBe(true);
    expect((await backend.acquire({ ...request, token: 'b', weight: 3 })).ok).toBe(true);
    expect((await backend.inspect('weights'))?.holders.map((h) => h.weight).sort()).toEqual([1, 3]);
  });

  it('never splice user strings into Lua: a key full of Lua and quotes is just a key', async () => {
    const key = "']]; redis.call('FLUSHALL') --[[";
    expect((await backend.acquire(mutex(key, 't'))).ok).toBe(true);
    expect(await backend.release({ key, token: 't' })).toBe(true);
    expect(await client.dbsize()).toBeGreaterThan(0);
  });
});

describe('ReleaseWaiters', () => {
  it('subscribes a channel once for all its waiters and unsubscribes after the last leaves', async () => {
    const subscriber = client.duplicate();
    const listeners = new Map<string, () => void>();
    subscriber.on('message', (channel) => listeners.get(channel)?.());
    const waiters = new ReleaseWaiters({
      subscribe: async (channel, onMessage) => {
        listeners.set(channel, onMessage);
        await subscriber.subscribe(channel);
      },
      unsubscribe: async (channel) => {
        await subscriber.unsubscribe(channel);
      },
    });
    const numsub = async () => (await client.pubsub('NUMSUB', 'rw:channel'))[1];
    try {
      const aborting = new AbortController();
      const first = waiters.wait('rw:channel', new AbortController().signal);
      const second = waiters.wait('rw:channel', aborting.signal);
      await sleep(50);
      expect(await numsub()).toBe(1);
      aborting.abort(new Error('gone'));
      await expect(second).rejects.toThrow('gone');
      expect(await numsub()).toBe(1);
      await client.publish('rw:channel', 'released');
      await first;
      await sleep(50);
      expect(await numsub()).toBe(0);
      expect(waiters.channelCount).toBe(0);
      waiters.close(new Error('closed'));
      await expect(waiters.wait('rw:channel', new AbortController().signal)).rejects.toThrow(
        'closed',
      );
    } finally {
      subscriber.disconnect();
    }
  });
});
