import { fileURLToPath } from 'node:url';
import { LockManager } from '@deadbolt/core';
import { type RedisServer, runScriptToExit, startRedis } from '@deadbolt/testing';
import { runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import { GlideClient, GlideClientConfiguration } from '@valkey/valkey-glide';
import * as ioredis from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GlideBackend } from '../src/index.js';
import { glideClusterTestClients, glideTestClients } from './glide-clients.js';

/** Clients of other libraries, each with what the refusal must say. */
const foreignClients = () => [
  {
    what: 'an ioredis client',
    client: new ioredis.Redis({ lazyConnect: true }),
    says: /looks like ioredis: use IoredisBackend/,
  },
  {
    what: 'a node-redis client',
    client: createClient(),
    says: /looks like node-redis: use NodeRedisBackend/,
  },
];

runRedisAdapterSuite({
  name: 'valkey-glide (GlideClient)',
  clients: glideTestClients,
  construct: (client, options) => new GlideBackend(client as never, options as never),
  foreignClients,
});

runRedisAdapterSuite({
  name: 'valkey-glide (GlideClusterClient)',
  clients: glideClusterTestClients,
  construct: (client, options) => new GlideBackend(client as never, options as never),
  backendVariants: { 'classic pub/sub': { pubsub: 'classic' } },
  foreignClients,
});

describe('GlideBackend', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const addressOf = () => {
    const { hostname, port } = new URL(server.url);
    return [{ host: hostname, port: Number(port) }];
  };

  it("refuses a pubsub option that is neither 'sharded' nor 'classic'", async () => {
    const client = await GlideClient.createClient({ addresses: addressOf() });
    try {
      expect(() => new GlideBackend(client, { pubsub: 'fast' as never })).toThrow('options.pubsub');
    } finally {
      client.close();
    }
  });

  it('refuses a GLIDE client without subscriptions after creation (before 2.3), saying so', () => {
    // What a 2.2 client lacks, on an object shaped otherwise like one.
    class GlideClient22 {
      static createClient() {}
      customCommand() {}
    }
    expect(() => new GlideBackend(new GlideClient22() as never)).toThrow(/2\.3 or later/);
  });

  it('refuses a GLIDE client that does not keep its configuration, which its subscriber is made from', async () => {
    const client = await GlideClient.createClient({ addresses: addressOf() });
    try {
      // What a GLIDE that stopped keeping it would look like; a real client keeps it.
      const withoutConfiguration = Object.create(client, { config: { value: undefined } });
      expect(() => new GlideBackend(withoutConfiguration)).toThrow(
        /keeps the configuration it was created with/,
      );
      expect(() => new GlideBackend(client)).not.toThrow();
    } finally {
      client.close();
    }
  });

  it("keeps the user's own subscriptions and callback apart from the backend's subscriber", async () => {
    const received: string[] = [];
    let helloArrived: () => void = () => undefined;
    const hello = new Promise<void>((resolve) => {
      helloArrived = resolve;
    });
    const client = await GlideClient.createClient({
      addresses: addressOf(),
      pubsubSubscriptions: {
        channelsAndPatterns: {
          [GlideClientConfiguration.PubSubChannelModes.Exact]: new Set(['news']),
        },
        callback: (message) => {
          received.push(String(message.message));
          if (String(message.message) === 'hello') helloArrived();
        },
      },
    });
    const backend = new GlideBackend(client, { prefix: 'own-subscriptions' });
    try {
      const locks = new LockManager({ backend });
      const held = await locks.acquire('k', { ttl: 60_000 });
      const waiting = locks.acquire('k', { wait: 60_000, fair: false });
      await held.release();
      await (await waiting).release();
      const publisher = await GlideClient.createClient({ addresses: addressOf() });
      await publisher.publish('hello', 'news');
      publisher.close();
      await hello;
      // The user's callback saw their channel only, none of the wake-ups published before.
      expect(received).toEqual(['hello']);
    } finally {
      await backend.close();
      client.close();
    }
  });

  it("opens the subscriber with the user's credentials: a waiter on a password-protected server is woken by pub/sub", async () => {
    await using locked = await startRedis({ args: ['--requirepass', 'sesame'] });
    const { hostname, port } = new URL(locked.url);
    const configuration = {
      addresses: [{ host: hostname, port: Number(port) }],
      credentials: { password: 'sesame' },
      requestTimeout: 5_000,
    };
    const [holderClient, waiterClient] = await Promise.all([
      GlideClient.createClient(configuration),
      GlideClient.createClient(configuration),
    ]);
    const holder = new GlideBackend(holderClient);
    const waiter = new GlideBackend(waiterClient);
    try {
      const held = await new LockManager({ backend: holder }).acquire('k', { ttl: 120_000 });
      // Backoff so slow that only a wake-up can serve the waiter within the test.
      const waiting = new LockManager({
        backend: waiter,
        backoff: { initialMs: 600_000, maxMs: 600_000 },
      }).acquire('k', { wait: 60_000, fair: false });
      // The first wait of a key resolves once its subscription is in place: then release.
      await waiter.wakeUps.waitForRelease({ key: 'k', signal: new AbortController().signal });
      await held.release();
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(held.fence);
      await next.release();
    } finally {
      await Promise.all([holder.close(), waiter.close()]);
      holderClient.close();
      waiterClient.close();
    }
  });

  // The safety kill only turns a process that never exits into a failure; a script that exits by
  // itself took up to 25 s beside a second CI run.
  it('lets the process exit once the backend and the client are closed, waiters and all', {
    timeout: 100_000,
  }, async () => {
    const script = fileURLToPath(new URL('./fixtures/exit-after-close.mjs', import.meta.url));
    const { code, output } = await runScriptToExit(script, [server.url], { safetyMs: 90_000 });
    expect(output).toContain('closed');
    expect(code).toBe(0);
  });
});
