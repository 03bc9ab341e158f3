import { type LockBackend, LockLostError, LockManager } from '@deadbolt/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../harness/redis.js';
import { eventually, sleep } from './context.js';
import { runBackendConformance } from './index.js';

/** A backend over a fresh client of the adapter's library, and how to check and close that client. */
export interface RedisAdapterConnection {
  backend: LockBackend;
  /** A command on the user's client, to show it still works after the backend closed. */
  ping(): Promise<unknown>;
  /** Closes the user's client. */
  close(): Promise<void>;
}

/** Options of {@link runRedisAdapterSuite}. */
export interface RedisAdapterSuiteOptions {
  /** Names the suite, for example `'ioredis'`. */
  name: string;
  /** Connects a client of the adapter's library to `url` and wraps it in the backend. */
  connect: (url: string, options?: { prefix?: string }) => Promise<RedisAdapterConnection>;
}

/**
 * The conformance suite plus what every Redis adapter must show on real servers: pub/sub
 * wake-ups over one subscriber connection, lost-lock signals when the server dies, recovery after
 * a restart or `SCRIPT FLUSH`, prefix isolation and awkward keys.
 */
export function runRedisAdapterSuite(options: RedisAdapterSuiteOptions): void {
  let server: RedisServer;
  const open = new Map<LockBackend, RedisAdapterConnection>();
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  runBackendConformance({
    name: options.name,
    create: async () => {
      const connection = await options.connect(server.url);
      open.set(connection.backend, connection);
      return connection.backend;
    },
    cleanup: async (backend) => {
      await open.get(backend)?.close();
      open.delete(backend);
    },
  });

  describe(`${options.name}: on a real Redis`, () => {
    it('survives SCRIPT FLUSH mid-run', async () => {
      const connection = await options.connect(server.url);
      try {
        const locks = new LockManager({ backend: connection.backend });
        const first = await locks.acquire('flush:key');
        await server.command('SCRIPT', 'FLUSH');
        expect(await first.release()).toBe(true);
        const second = await locks.acquire('flush:key');
        expect(second.fence).toBeGreaterThan(first.fence);
        await second.release();
      } finally {
        await connection.backend.close?.();
        await connection.close();
      }
    });

    it('keeps backends with different prefixes apart', async () => {
      const [blue, green] = await Promise.all([
        options.connect(server.url, { prefix: 'blue' }),
        options.connect(server.url, { prefix: 'green' }),
      ]);
      try {
        const held = await new LockManager({ backend: blue.backend }).acquire('shared-name');
        const other = await new LockManager({ backend: green.backend }).tryAcquire('shared-name');
        expect(other).not.toBeNull();
        await other?.release();
        await held.release();
      } finally {
        await Promise.all(
          [blue, green].map(async (c) => [await c.backend.close?.(), await c.close()]),
        );
      }
    });

    it.each([
      ['spaces', 'a key with spaces'],
      ['unicode', 'clé-ünïcødé-鍵-🔒'],
      ['braces', 'user:{42}:profile'],
      ['a leading }', '}x{'],
      ['percent signs', '%7B'],
    ])('locks keys with %s', async (_, key) => {
      const connection = await options.connect(server.url);
      try {
        const [first, second] = [0, 1].map(() => new LockManager({ backend: connection.backend }));
        const lock = await first!.acquire(key);
        expect(await second!.tryAcquire(key)).toBeNull();
        // A key that encodes like another must still be a different lock.
        const lookalike = await second!.tryAcquire(`${key}x`);
        expect(lookalike).not.toBeNull();
        await lookalike?.release();
        expect((await connection.backend.inspect?.(key))?.holders).toHaveLength(1);
        await lock.release();
      } finally {
        await connection.backend.close?.();
        await connection.close();
      }
    });

    it('serves 100 waiters on many keys over one extra connection, closed when they leave', async () => {
      const connection = await options.connect(server.url);
      try {
        const clients = async () =>
          (await server.command('CLIENT', 'LIST'))
            .split('\n')
            .filter((line) => line.includes('id=')).length;
        const baseline = await clients();
        const backend = connection.backend;
        const controller = new AbortController();
        const waits = Array.from({ length: 100 }, (_, index) =>
          backend.waitForRelease?.(`many:${index % 25}`, controller.signal).catch(() => undefined),
        );
        await eventually(
          'the subscriber is connected',
          async () => (await clients()) === baseline + 1,
        );
        await sleep(100);
        expect(await clients()).toBe(baseline + 1);
        // Four waiters on one key share one subscription.
        const subscribers = await server.command('PUBSUB', 'NUMSUB', 'deadbolt:{many:0}:released');
        expect(subscribers.endsWith(':1\r\n')).toBe(true);
        controller.abort();
        await Promise.all(waits);
        await backend.close?.();
        await eventually('the subscriber is gone', async () => (await clients()) === baseline);
        // The user's client is untouched.
        await connection.ping();
      } finally {
        await connection.close();
      }
    });

    it('aborts lock.signal before the lease could expire when the server dies, and recovers after a restart', async () => {
      const own = await startRedis();
      const connection = await options.connect(own.url);
      try {
        const locks = new LockManager({ backend: connection.backend });
        const lock = await locks.acquire('fault:kill', { ttl: 1_000, autoExtend: true });
        const lost = new Promise<number>((resolve) => {
          lock.signal.addEventListener('abort', () => resolve(Date.now()), { once: true });
        });
        await own.kill();
        const lostAt = await lost;
        expect(lostAt).toBeLessThan(lock.expiresAt);
        expect(lock.signal.reason).toBeInstanceOf(LockLostError);
        await own.restart();
        const again = await locks.acquire('fault:kill', { wait: 20_000 });
        expect(again.held).toBe(true);
        expect(await again.release()).toBe(true);
      } finally {
        await connection.backend.close?.();
        await connection.close().catch(() => undefined);
        await own.stop();
      }
    });
  });
}
