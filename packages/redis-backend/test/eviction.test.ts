import { randomUUID } from 'node:crypto';
import { BackendError, LockManager } from '@deadbolt/core';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  RedisBackend,
  type RedisBackendOptions,
  resolveRedisBackendOptions,
  type ScriptTransport,
} from '../src/index.js';
import { countingTransport, transportOf } from './helpers.js';

/** A server that evicts keys with an expiry once 3 MB are used, as the issue found it. */
const EVICTING = ['--maxmemory', '3mb', '--maxmemory-policy', 'volatile-lru'];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serverWith(args: readonly string[]): Promise<RedisServer> {
  const server = await startRedis({ args });
  cleanups.push(() => server.stop());
  return server;
}

function clientOf(server: RedisServer, options: RedisOptions = {}): Redis {
  const client = new Redis(server.url, options);
  client.on('error', () => undefined);
  cleanups.push(() => client.disconnect());
  return client;
}

/** A backend as an adapter builds it, from options a user passed. */
function backendOf(
  client: Redis,
  options: RedisBackendOptions = {},
  transport: ScriptTransport = transportOf(client),
): RedisBackend {
  const backend = new RedisBackend(
    { name: 'test', transport, openSubscriber: () => Promise.reject(new Error('unused')) },
    resolveRedisBackendOptions({ prefix: `eviction-${randomUUID()}`, ...options }),
  );
  cleanups.push(() => backend.close());
  return backend;
}

/** Warnings emitted through `process.emitWarning`, kept from the output. */
function captureWarnings(): () => { message: string; code: string | undefined }[] {
  const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  return () =>
    spy.mock.calls.map(([warning, options]) => ({
      message: String(warning),
      code: typeof options === 'object' ? options.code : undefined,
    }));
}

const mutex = (key: string) => ({ key, token: randomUUID(), ttlMs: 60_000, limit: 1, weight: 1 });

describe('a server that may evict keys', () => {
  it.each([
    ['volatile-lru', EVICTING],
    ['allkeys-lfu', ['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lfu']],
  ])(
    'refuses the first acquire (%s), saying what to set, until the server is fixed',
    async (policy, args) => {
      const server = await serverWith(args);
      const client = clientOf(server);
      const backend = backendOf(client);
      const locks = new LockManager({ backend });
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = await locks.acquire('report', { wait: 0 }).catch((caught) => caught);
        expect(error).toBeInstanceOf(BackendError);
        expect((error as BackendError).message).toMatch(
          /^\[deadbolt\] \[test\] refusing to lock .* set maxmemory-policy noeviction/,
        );
        expect((error as BackendError).message).toContain(`maxmemory-policy is ${policy}`);
      }
      // Refused before the lock was touched.
      expect(await client.dbsize()).toBe(0);
      // Each acquire asks again: fixing the server is enough, no restart needed.
      await client.config('SET', 'maxmemory-policy', 'noeviction');
      const lock = await locks.acquire('report', { wait: 0 });
      expect(lock.held).toBe(true);
      await lock.release();
    },
  );

  it("warns once and locks with evictionCheck: 'warn'", async () => {
    const warnings = captureWarnings();
    const server = await serverWith(EVICTING);
    const backend = backendOf(clientOf(server), { evictionCheck: 'warn' });
    const locks = new LockManager({ backend });
    const first = await Promise.all(['a', 'b', 'c'].map((key) => locks.acquire(key)));
    const later = await locks.acquire('d');
    expect([...first, later].every((lock) => lock.held)).toBe(true);
    expect(warnings()).toEqual([
      {
        code: 'DEADBOLT_EVICTION',
        message: expect.stringMatching(
          /^\[deadbolt\] \[test\] the server may evict a held lock .*maxmemory-policy is volatile-lru with maxmemory 3145728.* set maxmemory-policy noeviction/,
        ),
      },
    ]);
  });

  it("does not ask with evictionCheck: 'off'", async () => {
    const warnings = captureWarnings();
    const server = await serverWith(EVICTING);
    const client = clientOf(server);
    const transport = countingTransport(transportOf(client));
    const backend = backendOf(client, { evictionCheck: 'off' }, transport);
    expect((await backend.acquire(mutex('report'))).ok).toBe(true);
    expect(transport.calls.evalsha).toBe(1);
    expect(warnings()).toEqual([]);
  });
});

describe('a server that does not evict', () => {
  it.each([
    ['noeviction with a maxmemory', ['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction']],
    ['an evicting policy without a maxmemory', ['--maxmemory-policy', 'allkeys-lru']],
  ])('locks without a word (%s)', async (_, args) => {
    const warnings = captureWarnings();
    const server = await serverWith(args);
    const backend = backendOf(clientOf(server));
    expect((await backend.acquire(mutex('report'))).ok).toBe(true);
    expect(warnings()).toEqual([]);
  });
});

describe('the check', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
    return () => server.stop();
  });

  it('runs once per backend, shared by concurrent first acquires', async () => {
    const client = clientOf(server);
    const transport = countingTransport(transportOf(client));
    const backend = backendOf(client, {}, transport);
    const keys = Array.from({ length: 10 }, (_, index) => `key ${index}`);
    const first = await Promise.all(keys.map((key) => backend.acquire(mutex(key))));
    expect(first.every((result) => result.ok)).toBe(true);
    // Ten acquires and one check.
    expect(transport.calls.evalsha).toBe(11);
    await Promise.all(keys.map((key) => backend.acquire(mutex(`${key} again`))));
    expect(transport.calls.evalsha).toBe(21);
  });

  it('warns that it could not check when the server does not let INFO run, and locks', async () => {
    const warnings = captureWarnings();
    const user = `no-info-${randomUUID()}`;
    await server.call('ACL', 'SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', '-info');
    cleanups.push(() => server.call('ACL', 'DELUSER', user));
    const backend = backendOf(clientOf(server, { username: user, password: 'secret' }));
    const locks = new LockManager({ backend });
    expect((await locks.acquire('report')).held).toBe(true);
    expect((await locks.acquire('other')).held).toBe(true);
    expect(warnings()).toEqual([
      {
        code: 'DEADBOLT_EVICTION_UNCHECKED',
        message: expect.stringMatching(
          /^\[deadbolt\] \[test\] could not check whether the server may evict a held lock \(INFO was refused: .*\): make sure its maxmemory-policy is noeviction/,
        ),
      },
    ]);
  });

  it('asks again on the next acquire when it could not reach the server', async () => {
    const own = await serverWith([]);
    const client = clientOf(own, { enableOfflineQueue: false });
    const backend = backendOf(client);
    await own.kill();
    const error = await backend.acquire(mutex('report')).catch((caught) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(
      /^\[deadbolt\] \[test\] checking the server's maxmemory-policy failed/,
    );
    await own.restart();
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
    expect((await backend.acquire(mutex('report'))).ok).toBe(true);
  });
});

describe('why the check exists', () => {
  it("a held lock's hash is evicted under memory pressure, and the lock is granted again", async () => {
    // The warning is expected: keep it out of the output.
    captureWarnings();
    const server = await serverWith(EVICTING);
    const client = clientOf(server);
    const prefix = `eviction-${randomUUID()}`;
    const backend = backendOf(client, { prefix, evictionCheck: 'warn' });
    const holder = await new LockManager({ backend }).acquire('report', { ttl: 600_000 });
    const hash = backend.lockKey('report');
    // Ordinary cache writes with an expiry, as an application sharing the server makes them.
    const value = 'x'.repeat(1_000);
    let written = 0;
    while ((await client.exists(hash)) === 1) {
      if (written >= 200_000) throw new Error(`${hash} survived ${written} cache writes`);
      const batch = client.pipeline();
      for (let index = 0; index < 1_000; index++) {
        batch.set(`cache:${written + index}`, value, 'EX', 3_600);
      }
      await batch.exec();
      written += 1_000;
    }
    // The first holder still holds as far as it can tell, and a second process is granted too.
    expect(holder.held).toBe(true);
    const other = backendOf(client, { prefix, evictionCheck: 'off' });
    const second = await new LockManager({ backend: other }).tryAcquire('report');
    expect(second?.held).toBe(true);
  });
});
