import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Lock, LockLostError, LockManager } from '@deadbolt/core';
import { scripts } from '@deadbolt/redis-backend';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { createClient } from 'redis';
import { createClient as createClientV5 } from 'redis5';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeRedisBackend } from '../src/index.js';

/** What cleanup needs of a client of either major. */
interface Client {
  readonly isOpen: boolean;
  destroy(): unknown;
}

// The server is killed, paused and restarted here, so these tests have it to themselves.
let server: RedisServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const client of clients.splice(0)) if (client.isOpen) client.destroy();
  await server.resume().catch(() => undefined);
});

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** When `lock.signal` aborts. */
function lostAt(lock: Lock): Promise<number> {
  return new Promise((resolve) => {
    lock.signal.addEventListener('abort', () => resolve(Date.now()), { once: true });
  });
}

async function scriptLoaded(): Promise<boolean> {
  return ((await server.call('SCRIPT', 'EXISTS', scripts.acquire.sha)) as number[])[0] === 1;
}

describe.each([
  {
    major: 6,
    create: (disableOfflineQueue: boolean, reconnect: boolean) =>
      createClient({
        url: server.url,
        disableOfflineQueue,
        ...(reconnect ? {} : { socket: { reconnectStrategy: false as const } }),
      }),
  },
  {
    major: 5,
    create: (disableOfflineQueue: boolean, reconnect: boolean) =>
      createClientV5({
        url: server.url,
        disableOfflineQueue,
        ...(reconnect ? {} : { socket: { reconnectStrategy: false as const } }),
      }),
  },
])('NodeRedisBackend on node-redis $major when the server fails', ({ create }) => {
  async function connect({ failFast = false, reconnect = true } = {}) {
    const client = create(failFast, reconnect);
    // Connection errors are the point of these tests.
    client.on('error', () => undefined);
    clients.push(client);
    await client.connect();
    return client;
  }

  it('with commands failing fast, aborts lock.signal before expiry on a crash, then reloads the scripts after a restart', async () => {
    const client = await connect({ failFast: true });
    const locks = new LockManager({ backend: new NodeRedisBackend(client) });
    const lock = await locks.acquire('crash', { ttl: 1_000, autoExtend: true });
    const lost = lostAt(lock);
    await server.kill();
    expect(await lost).toBeLessThan(lock.expiresAt);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);

    await server.restart();
    expect(await scriptLoaded()).toBe(false);
    await eventually('the client reconnected', async () => (await client.ping()) === 'PONG');
    const again = await locks.acquire('crash');
    expect(await scriptLoaded()).toBe(true);
    expect(await again.release()).toBe(true);
  });

  it('with default client settings, aborts lock.signal before expiry while the server is paused, and carries on after', async () => {
    const locks = new LockManager({ backend: new NodeRedisBackend(await connect()) });
    const lock = await locks.acquire('pause', { ttl: 1_000, autoExtend: true });
    const lost = lostAt(lock);
    await server.pause();
    expect(await lost).toBeLessThan(lock.expiresAt);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    await server.resume();
    // The renewal sent during the pause may still be applied: the next holder waits it out.
    const next = await locks.acquire('pause', { wait: 10_000 });
    expect(next.fence).toBeGreaterThan(lock.fence);
    expect(await next.release()).toBe(true);
  });

  it('keeps waking a waiter through pub/sub after the server restarts under it', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const holderClient = await connect();
    const holders = new LockManager({ backend: new NodeRedisBackend(holderClient, { prefix }) });
    const waiterBackend = new NodeRedisBackend(await connect(), { prefix });
    // Only a wake-up can serve the waiter within the test: its backoff is a minute, and it races
    // rather than queues. A queued waiter asks again every half second to keep its place, and
    // would take the key the restart freed before the holder could take it again.
    const waiters = new LockManager({
      backend: waiterBackend,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      defaults: { fair: false },
    });
    const channel = `${prefix}:{k}`;
    const subscribed = async () =>
      ((await server.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1] === 1;

    await holders.acquire('k', { ttl: 60_000 });
    const waiting = waiters.acquire('k', { wait: 60_000 });
    await eventually('the waiter is subscribed', subscribed);
    await server.restart();
    await eventually('the subscriber subscribed again', subscribed);
    // The restart emptied the server: a new holder takes the key, and its release must reach
    // the waiter over the re-established subscription.
    await eventually('the holder reconnected', async () => (await holderClient.ping()) === 'PONG');
    const held = await holders.acquire('k', { ttl: 60_000 });
    await held.release();
    const next = await Promise.race([waiting, sleep(15_000).then(() => 'no wake-up')]);
    expect(next).not.toBe('no wake-up');
    if (typeof next !== 'string') await next.release();
    await waiterBackend.close();
  });
  it('reconnects a subscriber whose reconnectStrategy gave up when a waiter needs it', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const holderClient = await connect();
    const waiterClient = await connect({ reconnect: false });
    const holders = new LockManager({ backend: new NodeRedisBackend(holderClient, { prefix }) });
    const waiterBackend = new NodeRedisBackend(waiterClient, { prefix });
    // Only a wake-up can serve the waiter within the test (see above).
    const waiters = new LockManager({
      backend: waiterBackend,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      defaults: { fair: false },
    });
    // Open the subscriber (a first wait resolves once subscribed), then lose it for good.
    await waiterBackend.waitForRelease({ key: 'before', signal: new AbortController().signal });
    await server.restart();
    await eventually('the waiter client gave up', async () => !waiterClient.isOpen);
    await waiterClient.connect();
    await eventually('the holder reconnected', async () => (await holderClient.ping()) === 'PONG');

    const held = await holders.acquire('after', { ttl: 60_000 });
    const waiting = waiters.acquire('after', { wait: 60_000 });
    await eventually('the waiter is subscribed', async () => {
      const reply = await server.call('PUBSUB', 'NUMSUB', `${prefix}:{after}`);
      return (reply as [string, number])[1] === 1;
    });
    await held.release();
    const next = await Promise.race([waiting, sleep(15_000).then(() => 'no wake-up')]);
    expect(next).not.toBe('no wake-up');
    if (typeof next !== 'string') await next.release();
    await waiterBackend.close();
  });
});
