import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendError, LockManager } from '@deadbolt/core';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis, type RedisOptions, ReplyError } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IoredisBackend } from '../src/index.js';

/** Backoff so slow that only a pub/sub wake-up can serve a waiter within the test. */
const NO_POLLING = { backoff: { initialMs: 60_000, maxMs: 60_000 } };

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

function connect(options: RedisOptions = {}): Redis {
  const client = new Redis(server.url, options);
  clients.push(client);
  return client;
}

const prefix = () => `t${randomUUID().slice(0, 8)}`;

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** Connections open on the server now under the client name `name` (a duplicate keeps it). */
async function connectionCount(name: string, type?: 'pubsub'): Promise<number> {
  const list = String(await server.call('CLIENT', 'LIST', ...(type ? ['TYPE', type] : [])));
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

async function channels(pattern: string): Promise<unknown[]> {
  return (await server.call('PUBSUB', 'CHANNELS', pattern)) as unknown[];
}

describe('IoredisBackend wake-ups', () => {
  it.each([
    ['default options', {}],
    ['lazyConnect', { lazyConnect: true }],
    ['a keyPrefix', { keyPrefix: 'app:' }],
  ] satisfies [string, RedisOptions][])(
    'wakes a waiter through pub/sub when the holder releases (%s)',
    async (_, options) => {
      const namespace = prefix();
      const holderBackend = new IoredisBackend(connect(options), { prefix: namespace });
      const waiterBackend = new IoredisBackend(connect(options), { prefix: namespace });
      const holder = new LockManager({ backend: holderBackend });
      const waiter = new LockManager({ backend: waiterBackend, ...NO_POLLING });
      const held = await holder.acquire('report', { ttl: 60_000 });
      const waiting = waiter.acquire('report', { wait: 60_000 });
      await sleep(300);
      await held.release();
      // Backoff would retry after 30 s at the earliest; only the release message can be faster.
      const next = await Promise.race([waiting, sleep(15_000).then(() => 'no wake-up')]);
      expect(next).not.toBe('no wake-up');
      if (typeof next === 'string') return;
      expect(next.fence).toBeGreaterThan(held.fence);
      await next.release();
      await Promise.all([holderBackend.close(), waiterBackend.close()]);
    },
  );

  it('keeps one subscriber for 100 waiters on 25 keys, drops its subscriptions after the last waiter, and reuses it', async () => {
    const namespace = prefix();
    const backend = new IoredisBackend(connect({ connectionName: namespace }), {
      prefix: namespace,
    });
    await eventually('the client is connected', async () => {
      return (await connectionCount(namespace)) === 1;
    });
    const round = async () => {
      const controller = new AbortController();
      setMaxListeners(100, controller.signal);
      const waits = Array.from({ length: 100 }, (_, index) =>
        backend
          .waitForRelease({ key: `key ${index % 25}`, signal: controller.signal })
          .catch(() => undefined),
      );
      await eventually('25 channels are subscribed', async () => {
        return (await channels(`${namespace}:*`)).length === 25;
      });
      expect(await connectionCount(namespace, 'pubsub')).toBe(1);
      expect(await connectionCount(namespace)).toBe(2);
      controller.abort();
      await Promise.all(waits);
      await eventually('every channel is unsubscribed', async () => {
        return (await channels(`${namespace}:*`)).length === 0;
      });
      // The connection itself stays for the next waiter.
      expect(await connectionCount(namespace)).toBe(2);
    };
    await round();
    await round();
    await backend.close();
    await eventually('the subscriber is gone', async () => {
      return (await connectionCount(namespace)) === 1;
    });
  });
});

describe('IoredisBackend close()', () => {
  it('rejects pending waiters and later calls with BackendError and leaves the client usable', async () => {
    const namespace = prefix();
    const client = connect();
    const backend = new IoredisBackend(client, { prefix: namespace });
    const controller = new AbortController();
    // The first wait resolves as soon as its subscription is in place; the second one waits.
    await backend.waitForRelease({ key: 'k', signal: controller.signal });
    const pending = backend.waitForRelease({ key: 'k', signal: controller.signal });
    await sleep(50);
    await backend.close();
    const error = await pending.catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] \[ioredis\] /);
    await expect(backend.acquire(request('k'))).rejects.toBeInstanceOf(BackendError);
    await expect(
      backend.waitForRelease({ key: 'k', signal: controller.signal }),
    ).rejects.toBeInstanceOf(BackendError);
    await backend.close();
    expect(await client.ping()).toBe('PONG');
    const again = new IoredisBackend(client, { prefix: namespace });
    expect((await again.acquire(request('k'))).ok).toBe(true);
    await again.close();
  });
});

describe('IoredisBackend errors', () => {
  it('wraps an error reply as BackendError with the ioredis error as cause', async () => {
    const namespace = prefix();
    const client = connect();
    await client.set(`${namespace}:{k}`, 'not a hash');
    const error = await new IoredisBackend(client, { prefix: namespace })
      .acquire(request('k'))
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] \[ioredis\] .*WRONGTYPE/);
    expect((error as BackendError).cause).toBeInstanceOf(ReplyError);
  });

  it('wraps a connection failure as BackendError with the ioredis error as cause', async () => {
    const client = new Redis(await closedPort(), '127.0.0.1', {
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    clients.push(client);
    const locks = new LockManager({ backend: new IoredisBackend(client) });
    const error = await locks.acquire('k').catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/^\[deadbolt\] .*\[ioredis\]/);
    expect((error as BackendError).cause).toBeInstanceOf(Error);
  });
});

function request(key: string) {
  return { key, token: randomUUID(), ttlMs: 10_000, limit: 1, weight: 1 };
}

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
