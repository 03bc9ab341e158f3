import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  BackendError,
  InvalidArgumentError,
  type LockBackend,
  LockLostError,
  LockManager,
} from '@deadbolt/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../harness/redis.js';
import { eventually, sleep } from './context.js';
import { runBackendConformance } from './index.js';

/** A backend over a fresh client of the adapter's library, and how to check and close that client. */
export interface RedisAdapterConnection {
  backend: LockBackend;
  /** The user's client the backend was given, for {@link RedisAdapterSuiteOptions.construct}. */
  client?: unknown;
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
  /**
   * The adapter's constructor, called with whatever a user might pass (`new IoredisBackend(client,
   * options)`), for the tests of wrong clients and bad options; they run only when given.
   */
  construct?: (client: unknown, options?: unknown) => LockBackend;
  /**
   * Clients the adapter must refuse (another library's client, a cluster client, a pool), each
   * with what its error message must say; `dispose` frees one after the test.
   * @default none
   */
  foreignClients?: () => ForeignClient[];
}

/** A client of the wrong kind for an adapter; see {@link RedisAdapterSuiteOptions.foreignClients}. */
export interface ForeignClient {
  /** Names it in the test title, for example `'a node-redis client'`. */
  what: string;
  client: unknown;
  /** What the error message must say, for example `/use NodeRedisBackend/`. */
  says: RegExp;
  /** Frees the client, if it holds anything. */
  dispose?: () => unknown;
}

/** What every deadbolt Redis adapter has beyond the three required methods. */
const REDIS_CAPABILITIES = [
  'queue',
  'wakeUps',
  'handoff',
  'fences',
  'inspection',
  'close',
] as const;

/** A glob pattern for SCAN MATCH that matches `prefix` literally, then anything. */
function underPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (char) => `\\${char}`)}:*`;
}

/** Every key on `server` that SCAN MATCH `pattern` finds. */
async function scan(server: RedisServer, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const reply = (await server.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')) as [
      string,
      string[],
    ];
    cursor = String(reply[0]);
    found.push(...reply[1]);
  } while (cursor !== '0');
  // SCAN may return a key twice.
  return [...new Set(found)];
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

  const prefixes = new Map<LockBackend, string>();
  runBackendConformance({
    name: options.name,
    capabilities: REDIS_CAPABILITIES,
    create: async () => {
      // A prefix per test, so a SCAN of it lists exactly what this test stored.
      const prefix = `conformance-${randomUUID()}`;
      const connection = await options.connect(server.url, { prefix });
      open.set(connection.backend, connection);
      prefixes.set(connection.backend, prefix);
      return connection.backend;
    },
    cleanup: async (backend) => {
      await open.get(backend)?.close();
      open.delete(backend);
      prefixes.delete(backend);
    },
    storedNames: (backend) => scan(server, underPrefix(prefixes.get(backend)!)),
  });

  describe(`${options.name}: misuse on a real Redis`, () => {
    it('fails every call on a closed client with BackendError naming the library, leaving nothing behind', async () => {
      const prefix = `closed-${randomUUID()}`;
      const connection = await options.connect(server.url, { prefix });
      try {
        await connection.close();
        const locks = new LockManager({ backend: connection.backend });
        for (const call of [
          () => locks.acquire('k', { wait: 0 }),
          () => locks.tryAcquire('k'),
          () => connection.backend.extend({ key: 'k', token: 't', ttlMs: 1_000 }),
          () => connection.backend.release({ key: 'k', token: 't' }),
        ]) {
          const error = await call().then(
            () => undefined,
            (caught: unknown) => caught,
          );
          expect(error).toBeInstanceOf(BackendError);
          expect(error).toMatchObject({ code: 'BACKEND' });
          // `[deadbolt] [ioredis] acquire failed: …`: the library is named.
          expect((error as Error).message).toMatch(/^\[deadbolt\] \[[\w-]+\] /);
          expect((error as BackendError).cause).toBeInstanceOf(Error);
        }
        expect(await scan(server, underPrefix(prefix))).toEqual([]);
      } finally {
        await connection.backend.close?.();
      }
    });

    const { construct, foreignClients } = options;
    if (construct) {
      it.each([
        ['an empty prefix', { prefix: '' }, 'options.prefix', /1 to 64 characters/],
        ['a prefix with {', { prefix: 'app{1' }, 'options.prefix', /must not contain \{ or \}/],
        ['a prefix with }', { prefix: '}' }, 'options.prefix', /must not contain \{ or \}/],
        ['a prefix of 65 characters', { prefix: 'p'.repeat(65) }, 'options.prefix', /1 to 64/],
        ['a number as prefix', { prefix: 7 }, 'options.prefix', /1 to 64 characters/],
        ['an unknown option', { prefx: 'app' }, 'options.prefx', /unknown option/],
        ['options that are a string', 'app', 'options', /expected an object/],
      ] as const)(
        'refuses %s with InvalidArgumentError before any I/O',
        async (_, bad, argument, says) => {
          const connection = await options.connect(server.url);
          try {
            const before = await server.call('DBSIZE');
            let error: unknown;
            try {
              construct(connection.client, bad);
            } catch (caught) {
              error = caught;
            }
            expect(error).toBeInstanceOf(InvalidArgumentError);
            expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument });
            expect((error as Error).message).toContain(`invalid ${argument}: `);
            expect((error as Error).message).toMatch(says);
            expect(await server.call('DBSIZE')).toBe(before);
          } finally {
            await connection.backend.close?.();
            await connection.close();
          }
        },
      );

      it.each([
        ['undefined', undefined],
        ['null', null],
        ['a connection URL', 'redis://127.0.0.1:1'],
        ['a plain object', { host: '127.0.0.1' }],
        ['a LockBackend', { acquire() {}, extend() {}, release() {} }],
      ])('refuses %s as the client with InvalidArgumentError naming it', (_, client) => {
        let error: unknown;
        try {
          construct(client);
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'client' });
        expect((error as Error).message).toMatch(/invalid client: expected an? .*client/);
      });
    }
    if (construct && foreignClients) {
      it('refuses clients of the wrong kind with InvalidArgumentError saying which adapter to use', () => {
        const clients = foreignClients();
        expect(clients.length).toBeGreaterThan(0);
        try {
          for (const { what, client, says } of clients) {
            let error: unknown;
            try {
              construct(client);
            } catch (caught) {
              error = caught;
            }
            expect(error, what).toBeInstanceOf(InvalidArgumentError);
            expect(error, what).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'client' });
            expect((error as Error).message, what).toMatch(says);
          }
        } finally {
          for (const { dispose } of clients) dispose?.();
        }
      });
    }

    it('refuses a bad waitForRelease without subscribing to anything', async () => {
      const prefix = `wait-${randomUUID()}`;
      const connection = await options.connect(server.url, { prefix });
      const controller = new AbortController();
      try {
        const backend = connection.backend;
        for (const signal of [{}, null, 'abort']) {
          const error = await backend.wakeUps
            ?.waitForRelease({ key: 'refused', signal: signal as never })
            .then(
              () => undefined,
              (caught: unknown) => caught,
            );
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect(error).toMatchObject({ argument: 'request.signal' });
        }
        // A valid wait afterwards: once its channel shows, any earlier subscription would too
        // (they share the one subscriber connection, in order).
        const waiting = backend.wakeUps
          ?.waitForRelease({ key: 'accepted', signal: controller.signal })
          .catch(() => undefined);
        const channels = async () =>
          (await server.call('PUBSUB', 'CHANNELS', underPrefix(prefix))) as string[];
        await eventually('the valid wait subscribed', async () => (await channels()).length > 0);
        expect(await channels()).toEqual([expect.stringContaining('accepted')]);
        controller.abort();
        await waiting;
      } finally {
        controller.abort();
        await connection.backend.close?.();
        await connection.close();
      }
    });

    it('keeps every tricky (prefix, key) pair on names of its own: no two pairs share a Redis key', async () => {
      const run = randomUUID().slice(0, 8);
      // Pairs whose plain concatenations collide: "a" + "b:c" and "a:b" + "c" both read "a:b:c".
      const prefixes = ['a', 'a:b', 'a:', 'a::b', 'a:b:c', 'x%7B', 'x'].map((p) => `${run}:${p}`);
      const keys = ['b:c', 'c', ':c', 'b', '{c}', '}c{', '{', '}', 'c}:holders', '%7Bc%7D', ':b:c'];
      const connections = await Promise.all(
        prefixes.map((prefix) => options.connect(server.url, { prefix })),
      );
      try {
        const pairs = connections.flatMap((connection, index) =>
          keys.map((key) => ({ prefix: prefixes[index]!, key, backend: connection.backend })),
        );
        // Every pair is granted: had two pairs shared a name, the second would find it held.
        let namesPerPair = 0;
        for (const [index, pair] of pairs.entries()) {
          const granted = await pair.backend.acquire({
            key: pair.key,
            token: `pair-${index}`,
            ttlMs: 30_000,
            limit: 1,
            weight: 1,
          });
          expect(granted.ok, `${pair.prefix} + ${pair.key}`).toBe(true);
          if (index === 0) namesPerPair = (await scan(server, `${run}:*`)).length;
        }
        // On the server: the same number of names for every pair, none of them shared.
        expect(namesPerPair).toBeGreaterThan(0);
        expect(await scan(server, `${run}:*`)).toHaveLength(pairs.length * namesPerPair);
        for (const [index, pair] of pairs.entries()) {
          const info = await pair.backend.inspection?.inspect({ key: pair.key });
          expect(info?.holders.map((holder) => holder.token)).toEqual([`pair-${index}`]);
          // A token from another pair changes nothing here.
          const stranger = `pair-${(index + 1) % pairs.length}`;
          expect(await pair.backend.release({ key: pair.key, token: stranger })).toBe(false);
        }
        for (const [index, pair] of pairs.entries()) {
          expect(await pair.backend.release({ key: pair.key, token: `pair-${index}` })).toBe(true);
        }
      } finally {
        await Promise.all(
          connections.map(async (c) => [await c.backend.close?.(), await c.close()]),
        );
      }
    });
  });

  describe(`${options.name}: on a real Redis`, () => {
    it('refuses the first acquire on a server that may evict a held lock, saying what to set', async () => {
      const evicting = await startRedis({
        args: ['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru'],
      });
      const connection = await options.connect(evicting.url);
      try {
        const locks = new LockManager({ backend: connection.backend });
        const error = await locks.acquire('k', { wait: 0 }).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(BackendError);
        expect((error as Error).message).toMatch(
          /^\[deadbolt\] \[[\w-]+\] refusing to lock .*set maxmemory-policy noeviction.*: maxmemory-policy is allkeys-lru with maxmemory 104857600$/,
        );
        expect(await evicting.call('DBSIZE')).toBe(0);
      } finally {
        await connection.backend.close?.();
        await connection.close();
        await evicting.stop();
      }
    });

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
        expect((await connection.backend.inspection?.inspect({ key }))?.holders).toHaveLength(1);
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
        // One signal shared by 100 waits is intended here: without this Node warns of a leak.
        setMaxListeners(100, controller.signal);
        const waits = Array.from({ length: 100 }, (_, index) =>
          backend.wakeUps
            ?.waitForRelease({ key: `many:${index % 25}`, signal: controller.signal })
            .catch(() => undefined),
        );
        await eventually(
          'the subscriber is connected',
          async () => (await clients()) === baseline + 1,
        );
        await sleep(100);
        expect(await clients()).toBe(baseline + 1);
        // Four waiters on one key share one subscription.
        const subscribers = await server.command('PUBSUB', 'NUMSUB', 'deadbolt:{many:0}');
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
