import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:net';
import {
  BackendError,
  InvalidArgumentError,
  type Lock,
  type LockBackend,
  type LockInfo,
  LockLostError,
  LockManager,
  LockTimeoutError,
  type WakeUpCapability,
} from '@deadbolt/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster } from '../harness/cluster.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { type RedisServer, startRedis } from '../harness/redis.js';
import { RespError, type RespValue, sendCommands } from '../harness/resp.js';
import { type RedisSentinelDeployment, startRedisSentinel } from '../harness/sentinel.js';
import { eventually, sleep } from './context.js';
import { runBackendConformance } from './index.js';
import type { RedisClientSettings, RedisTestClients } from './redis-clients.js';

/** Options of {@link runRedisAdapterSuite}. */
export interface RedisAdapterSuiteOptions<Client> {
  /** Names the suite, for example `'ioredis'`. */
  name: string;
  /** How to make clients of the adapter's library (`ioredisTestClients(ioredis)`, …). */
  clients: RedisTestClients<Client>;
  /**
   * The adapter's constructor (`new IoredisBackend(client, options)`): the suite builds every
   * backend with it, and calls it with whatever a user might pass, for the tests of wrong clients
   * and bad options.
   */
  construct: (client: unknown, options?: unknown) => LockBackend;
  /**
   * Clients the adapter must refuse (another library's client, a cluster client, a pool), each
   * with what its error message must say; `dispose` frees one after the test.
   * @default none
   */
  foreignClients?: () => ForeignClient[];
  /**
   * Options of the adapter, by name, that the wake-up test also runs with, on every kind of
   * client: for example `{ 'classic pub/sub': { pubsub: 'classic' } }`.
   * @default {}
   */
  backendVariants?: Readonly<Record<string, object>>;
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
  'listing',
  'close',
] as const;

/** Backoff so slow that only a pub/sub wake-up can serve a waiter within a test. */
const NO_POLLING = { backoff: { initialMs: 600_000, maxMs: 600_000 } };

/** A glob pattern for SCAN MATCH that matches `prefix` literally, then anything. */
function underPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (char) => `\\${char}`)}:*`;
}

/** One server the suite looks at: it sends one command and resolves the decoded reply. */
type Node = Pick<RedisServer, 'call'>;

/** What the suite runs on: one server, or every node of a Redis Cluster. */
interface Deployment {
  /** Where clients connect: the server, or the first node of the cluster. */
  readonly url: string;
  /** Every node, replicas included. */
  nodes(): Promise<readonly Node[]>;
  /** The nodes that hold keys. */
  masters(): Promise<readonly Node[]>;
  stop(): Promise<void>;
}

/** A private `redis-server`, a Sentinel deployment, or a cluster of 3 masters with a replica each. */
async function deploy(topology: 'server' | 'cluster' | 'sentinel'): Promise<Deployment> {
  if (topology === 'server') return single(await startRedis());
  if (topology === 'sentinel') {
    const sentinel = await startRedisSentinel();
    return {
      url: sentinel.url,
      nodes: async () => sentinel.nodes.filter((node) => node.running),
      masters: async () => [await sentinel.master()],
      stop: () => sentinel.stop(),
    };
  }
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  const node = (target: { host: string; port: number }): Node => ({
    call: async (...args) => {
      const [reply] = await sendCommands(target, [args]);
      if (reply?.value instanceof RespError) throw reply.value;
      return reply?.value ?? null;
    },
  });
  const [first] = cluster.nodes;
  return {
    url: `redis://${first?.host}:${first?.port}`,
    nodes: async () => cluster.nodes.map(node),
    masters: async () => (await cluster.masters()).map(node),
    stop: () => cluster.stop(),
  };
}

/** `server` as a deployment of its own. */
function single(server: RedisServer): Deployment {
  const nodes = async () => [server];
  return { url: server.url, nodes, masters: nodes, stop: () => server.stop() };
}

/** Every key on the masters of `deployment` that SCAN MATCH `pattern` finds. */
async function scan(deployment: Deployment, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  for (const master of await deployment.masters()) {
    let cursor = '0';
    do {
      const reply = (await master.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')) as [
        string,
        string[],
      ];
      cursor = String(reply[0]);
      // SCAN may return a key twice.
      for (const key of reply[1]) found.add(key);
    } while (cursor !== '0');
  }
  return [...found];
}

/** The sum of what `read` finds on each of `nodes`. */
async function sum(nodes: readonly Node[], read: (node: Node) => Promise<number>) {
  return (await Promise.all(nodes.map(read))).reduce((total, count) => total + count, 0);
}

/** The keys stored on the masters of `deployment`. */
async function size(deployment: Deployment): Promise<number> {
  return sum(await deployment.masters(), async (node) => Number(await node.call('DBSIZE')));
}

/** What `node` answers to `PUBSUB <sharded>`, or `fallback` on a server without sharded pub/sub. */
function shardedPubSub(node: Node, args: string[], fallback: RespValue): Promise<RespValue> {
  return node.call('PUBSUB', ...args).catch(() => fallback);
}

/** The channels of `deployment`, classic or sharded, with a subscriber, whose names match `pattern`. */
async function channels(deployment: Deployment, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  for (const node of await deployment.nodes()) {
    for (const reply of [
      await node.call('PUBSUB', 'CHANNELS', pattern),
      await shardedPubSub(node, ['SHARDCHANNELS', pattern], []),
    ]) {
      for (const channel of reply as string[]) found.add(channel);
    }
  }
  return [...found];
}

/** How many connections of `deployment` subscribe to `channel`, classic or sharded. */
async function subscribers(deployment: Deployment, channel: string): Promise<number> {
  return sum(await deployment.nodes(), async (node) => {
    const classic = (await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
    const sharded = (await shardedPubSub(node, ['SHARDNUMSUB', channel], [channel, 0])) as [
      string,
      number,
    ];
    return classic[1] + sharded[1];
  });
}

/** Sets the string `name` on the master of `deployment` that owns it. */
async function setString(deployment: Deployment, name: string, value: string): Promise<void> {
  for (const master of await deployment.masters()) {
    try {
      await master.call('SET', name, value);
      return;
    } catch (error) {
      if (!(error instanceof RespError && error.message.startsWith('MOVED'))) throw error;
    }
  }
  throw new Error(`no master took ${name}`);
}

/** Connections open on `server` under the client name `name` (a duplicate keeps it). */
async function connectionsNamed(server: Node, name: string, type?: 'pubsub') {
  const list = String(await server.call('CLIENT', 'LIST', ...(type ? ['TYPE', type] : [])));
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

/** How many scripts `server` has cached: none after a restart. */
async function cachedScripts(server: Node): Promise<number> {
  const info = String(await server.call('INFO', 'memory'));
  return Number(/number_of_cached_scripts:(\d+)/.exec(info)?.[1]);
}

/** When `lock.signal` aborts. */
function lostAt(lock: Lock): Promise<number> {
  return new Promise((resolve) => {
    lock.signal.addEventListener('abort', () => resolve(Date.now()), { once: true });
  });
}

/** `waiting`, or `'no wake-up'` if it takes 15 s: a waiter without polling needs a wake-up. */
function wokenOrNot(waiting: Promise<Lock>): Promise<Lock | 'no wake-up'> {
  return Promise.race([waiting, sleep(15_000).then(() => 'no wake-up' as const)]);
}

/** A mutex request of a fresh token. */
function request(key: string) {
  return { key, token: randomUUID(), ttlMs: 10_000, limit: 1, weight: 1 };
}

/** The error `call` throws or rejects with; undefined if it succeeds. */
async function failureOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A master of a cluster: its node ID, its address, whether it owns the slot asked about. */
interface ClusterMaster {
  node: Node;
  id: string;
  host: string;
  port: number;
  ownsSlot: boolean;
}

/** The slot of each of `keys` under `prefix` (`CLUSTER KEYSLOT` hashes only the `{key}` tag). */
async function slotsOf(
  deployment: Deployment,
  prefix: string,
  keys: readonly string[],
): Promise<number[]> {
  const [node] = await deployment.masters();
  if (node === undefined) throw new Error('the cluster has no master');
  return Promise.all(
    keys.map(async (key) => Number(await node.call('CLUSTER', 'KEYSLOT', `${prefix}:{${key}}`))),
  );
}

/** The masters of the cluster `deployment`, the one that owns `slot` marked. */
async function clusterMasters(deployment: Deployment, slot: number): Promise<ClusterMaster[]> {
  const nodes = await deployment.masters();
  const ids = await Promise.all(
    nodes.map(async (node) => String(await node.call('CLUSTER', 'MYID'))),
  );
  // `[from, to, [host, port, id], …replicas]` per range of slots.
  const ranges = (await nodes[0]?.call('CLUSTER', 'SLOTS')) as [
    number,
    number,
    [string, number, string],
  ][];
  const ownerId = ranges.find(([from, to]) => from <= slot && slot <= to)?.[2][2];
  return nodes.map((node, index) => {
    const id = ids[index] as string;
    // Every master of the suite's clusters owns slots, so each has a range naming its address.
    const address = ranges.find((range) => range[2][2] === id)?.[2];
    if (address === undefined) throw new Error(`master ${id} owns no slot`);
    return { node, id, host: address[0], port: Number(address[1]), ownsSlot: id === ownerId };
  });
}

/**
 * Moves `slot` from the master that owns it to another master, keys included, the way
 * `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, MIGRATE of every key, then SETSLOT NODE
 * on every master. `whileMigrating` starts once the slot is MIGRATING, 200 ms before its keys
 * move: meanwhile the source refuses a script whose keys it holds only some of (TRYAGAIN).
 * Resolves what `whileMigrating` resolves.
 */
async function migrateSlot<T>(
  deployment: Deployment,
  slot: number,
  whileMigrating: () => Promise<T>,
): Promise<T> {
  const masters = await clusterMasters(deployment, slot);
  const source = masters.find((master) => master.ownsSlot);
  const target = masters.find((master) => !master.ownsSlot);
  if (source === undefined || target === undefined) throw new Error(`no master to move ${slot} to`);
  let moved = false;
  try {
    await target.node.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
    await source.node.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id);
    const during = whileMigrating();
    // Awaited below; until then a rejection must not count as unhandled.
    during.catch(() => undefined);
    await sleep(200);
    const keys = (await source.node.call(
      'CLUSTER',
      'GETKEYSINSLOT',
      String(slot),
      '1000',
    )) as string[];
    expect(keys.length).toBeGreaterThan(0);
    await source.node.call(
      'MIGRATE',
      target.host,
      String(target.port),
      '',
      '0',
      '5000',
      'KEYS',
      ...keys,
    );
    const others = masters.filter((master) => master !== target && master !== source);
    for (const master of [target, source, ...others]) {
      await master.node.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
    }
    moved = true;
    expect(await target.node.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe(keys.length);
    return await during;
  } finally {
    // A migration cut short would leave the slot half-moved for the tests after on this cluster.
    if (!moved) {
      for (const master of [source, target]) {
        await master.node.call('CLUSTER', 'SETSLOT', String(slot), 'STABLE').catch(() => null);
      }
    }
  }
}

/**
 * The conformance suite plus what every Redis adapter must show on real servers: pub/sub
 * wake-ups over one subscriber connection on every kind of client, `close()`, errors that name
 * the library, lost-lock signals when the server dies or pauses, recovery after a restart or
 * `SCRIPT FLUSH`, prefix isolation, awkward keys, and the refusal of bad options and clients.
 * On a cluster, also what only a cluster has: locks spread over many slots, a slot migration
 * under a held lock and its waiter, an eviction check that asks every master, and a failover.
 *
 * @example
 * ```ts
 * import { ioredisTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
 * import * as ioredis from 'ioredis';
 *
 * runRedisAdapterSuite({
 *   name: 'ioredis',
 *   clients: ioredisTestClients(ioredis),
 *   construct: (client, options) => new IoredisBackend(client as never, options as never),
 * });
 * ```
 */
export function runRedisAdapterSuite<Client>(options: RedisAdapterSuiteOptions<Client>): void {
  const { clients, construct } = options;
  const library = clients.library;
  const ReplyError = clients.ReplyError ?? Error;
  const topology = clients.topology ?? 'server';
  const where = {
    server: 'a real Redis',
    cluster: 'a real Redis Cluster',
    sentinel: 'a real Redis Sentinel deployment',
  }[topology];
  // Hooks and tests in a block of their own: a cluster starts when its suite does, not before.
  describe(options.name, () => {
    let deployment: Deployment;
    beforeAll(async () => {
      deployment = await deploy(topology);
    });
    afterAll(async () => {
      await deployment?.stop();
    });

    /** Closes what the current test opened, backends first. */
    const closers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    });

    /**
     * A client of `url` and a backend on it under `prefix` (the adapter's default without one),
     * with `backendOptions` besides; both are closed after the test.
     */
    async function open(
      url: string,
      prefix?: string,
      settings?: RedisClientSettings,
      backendOptions: object = {},
    ) {
      const client = await clients.connect(url, settings);
      closers.push(async () => clients.close(client));
      const backend = construct(
        client,
        prefix === undefined ? undefined : { prefix, ...backendOptions },
      );
      closers.push(async () => backend.close?.());
      return { client, backend };
    }

    const prefixes = new Map<LockBackend, string>();
    runBackendConformance({
      name: options.name,
      capabilities: REDIS_CAPABILITIES,
      wakesWhenListening: true,
      create: async () => {
        // A prefix per test, so a SCAN of it lists exactly what this test stored.
        const prefix = `conformance-${randomUUID()}`;
        const { backend } = await open(deployment.url, prefix);
        prefixes.set(backend, prefix);
        return backend;
      },
      storedNames: (backend) => scan(deployment, underPrefix(prefixes.get(backend) ?? '')),
    });

    /** `[deadbolt] [ioredis] …`: an error that names the library. */
    const namesLibrary = new RegExp(`^\\[deadbolt\\] \\[${library}\\] `);

    describe(`misuse on ${where}`, () => {
      it('fails every call on a closed client with BackendError naming the library, leaving nothing behind', async () => {
        const prefix = `closed-${randomUUID()}`;
        const { client, backend } = await open(deployment.url, prefix);
        clients.close(client);
        const locks = new LockManager({ backend });
        for (const call of [
          () => locks.acquire('k', { wait: 0 }),
          () => locks.tryAcquire('k'),
          () => backend.extend({ key: 'k', token: 't', ttlMs: 1_000 }),
          () => backend.release({ key: 'k', token: 't' }),
        ]) {
          const error = await failureOf(call);
          expect(error).toBeInstanceOf(BackendError);
          expect(error).toMatchObject({ code: 'BACKEND' });
          expect((error as Error).message).toMatch(namesLibrary);
          expect((error as BackendError).cause).toBeInstanceOf(Error);
        }
        expect(await scan(deployment, underPrefix(prefix))).toEqual([]);
      });

      it('fails with BackendError naming the library when nothing listens, the client error as cause', async () => {
        const port = await closedPort();
        const url =
          topology === 'sentinel'
            ? `redis-sentinel://127.0.0.1:${port}/deadbolt`
            : `redis://127.0.0.1:${port}`;
        const { backend } = await open(url, undefined, { failFast: true, reconnect: false });
        const error = await failureOf(() => new LockManager({ backend }).acquire('k'));
        expect(error).toBeInstanceOf(BackendError);
        expect((error as Error).message).toMatch(namesLibrary);
        expect((error as BackendError).cause).toBeInstanceOf(Error);
      });

      it("wraps an error reply as BackendError naming the library, with the library's error as cause", async () => {
        const prefix = `wrong-type-${randomUUID()}`;
        await setString(deployment, `${prefix}:{k}`, 'not a hash');
        const { backend } = await open(deployment.url, prefix);
        const error = await failureOf(() => backend.acquire(request('k')));
        expect(error).toBeInstanceOf(BackendError);
        expect((error as Error).message).toMatch(namesLibrary);
        expect((error as Error).message).toMatch(/WRONGTYPE/);
        expect((error as BackendError).cause).toBeInstanceOf(ReplyError);
      });

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
          const { client } = await open(deployment.url);
          const before = await size(deployment);
          const error = await failureOf(() => construct(client, bad));
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument });
          expect((error as Error).message).toContain(`invalid ${argument}: `);
          expect((error as Error).message).toMatch(says);
          expect(await size(deployment)).toBe(before);
        },
      );

      it.each([
        ['undefined', undefined],
        ['null', null],
        ['a connection URL', 'redis://127.0.0.1:1'],
        ['a plain object', { host: '127.0.0.1' }],
        ['a LockBackend', { acquire() {}, extend() {}, release() {} }],
      ])('refuses %s as the client with InvalidArgumentError naming it', async (_, client) => {
        const error = await failureOf(() => construct(client));
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'client' });
        expect((error as Error).message).toMatch(/invalid client: expected an? .*client/);
      });

      const { foreignClients } = options;
      if (foreignClients) {
        it('refuses clients of the wrong kind with InvalidArgumentError saying which adapter to use', async () => {
          const foreign = foreignClients();
          closers.push(async () => {
            for (const { dispose } of foreign) dispose?.();
          });
          expect(foreign.length).toBeGreaterThan(0);
          for (const { what, client, says } of foreign) {
            const error = await failureOf(() => construct(client));
            expect(error, what).toBeInstanceOf(InvalidArgumentError);
            expect(error, what).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'client' });
            expect((error as Error).message, what).toMatch(says);
          }
        });
      }

      it('refuses a bad waitForRelease without subscribing to anything', async () => {
        const prefix = `wait-${randomUUID()}`;
        const { backend } = await open(deployment.url, prefix);
        for (const signal of [{}, null, 'abort']) {
          const error = await failureOf(() =>
            backend.wakeUps?.waitForRelease({ key: 'refused', signal: signal as never }),
          );
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect(error).toMatchObject({ argument: 'request.signal' });
        }
        // A valid wait afterwards: once its channel shows, any earlier subscription would too
        // (they share the one subscriber connection, in order).
        const controller = new AbortController();
        const waitAccepted = () =>
          backend.wakeUps
            ?.waitForRelease({ key: 'accepted', signal: controller.signal })
            .catch(() => undefined);
        // The first wait ends once its subscription is in place; the second one stays, so the
        // channel cannot be unsubscribed a second after (on a loaded machine) between two reads.
        await waitAccepted();
        const waiting = waitAccepted();
        const subscribed = () => channels(deployment, underPrefix(prefix));
        await eventually('the valid wait subscribed', async () => (await subscribed()).length > 0);
        expect(await subscribed()).toEqual([expect.stringContaining('accepted')]);
        controller.abort();
        await waiting;
      });

      it('keeps every tricky (prefix, key) pair on names of its own: no two pairs share a Redis key', async () => {
        const run = randomUUID().slice(0, 8);
        // Pairs whose plain concatenations collide: "a" + "b:c" and "a:b" + "c" both read "a:b:c".
        const prefixes = ['a', 'a:b', 'a:', 'a::b', 'a:b:c', 'x%7B', 'x'].map((p) => `${run}:${p}`);
        const keys = [
          'b:c',
          'c',
          ':c',
          'b',
          '{c}',
          '}c{',
          '{',
          '}',
          'c}:holders',
          '%7Bc%7D',
          ':b:c',
        ];
        const backends = await Promise.all(prefixes.map((prefix) => open(deployment.url, prefix)));
        const pairs = backends.flatMap(({ backend }, index) =>
          keys.map((key) => ({ prefix: prefixes[index]!, key, backend })),
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
          if (index === 0) namesPerPair = (await scan(deployment, `${run}:*`)).length;
        }
        // On the server: the same number of names for every pair, none of them shared.
        expect(namesPerPair).toBeGreaterThan(0);
        expect(await scan(deployment, `${run}:*`)).toHaveLength(pairs.length * namesPerPair);
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
      });
    });

    describe(`on ${where}`, () => {
      // A cluster's adapter checks every master: see 'what only a cluster has'.
      if (topology === 'server') {
        it('refuses the first acquire on a server that may evict a held lock, saying what to set', async () => {
          const evicting = await startRedis({
            args: ['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru'],
          });
          const { backend } = await open(evicting.url);
          // Stopped last, after the backend and the client on it.
          closers.unshift(() => evicting.stop());
          const error = await failureOf(() =>
            new LockManager({ backend }).acquire('k', { wait: 0 }),
          );
          expect(error).toBeInstanceOf(BackendError);
          expect((error as Error).message).toMatch(
            /^\[deadbolt\] \[[\w-]+\] refusing to lock .*set maxmemory-policy noeviction.*: maxmemory-policy is allkeys-lru with maxmemory 104857600$/,
          );
          expect(await evicting.call('DBSIZE')).toBe(0);
        });
      }

      it('survives SCRIPT FLUSH mid-run', async () => {
        const { backend } = await open(deployment.url, `flush-${randomUUID()}`);
        const locks = new LockManager({ backend });
        const first = await locks.acquire('flush:key');
        await Promise.all((await deployment.nodes()).map((node) => node.call('SCRIPT', 'FLUSH')));
        expect(await first.release()).toBe(true);
        const second = await locks.acquire('flush:key');
        expect(second.fence).toBeGreaterThan(first.fence);
        await second.release();
      });

      it('keeps backends with different prefixes apart', async () => {
        const [blue, green] = await Promise.all([
          open(deployment.url, 'blue'),
          open(deployment.url, 'green'),
        ]);
        const held = await new LockManager({ backend: blue.backend }).acquire('shared-name');
        const other = await new LockManager({ backend: green.backend }).tryAcquire('shared-name');
        expect(other).not.toBeNull();
        await other?.release();
        await held.release();
      });

      it.each([
        ['spaces', 'a key with spaces'],
        ['unicode', 'clé-ünïcødé-鍵-🔒'],
        ['braces', 'user:{42}:profile'],
        ['a leading }', '}x{'],
        ['percent signs', '%7B'],
      ])('locks keys with %s', async (_, key) => {
        const { backend } = await open(deployment.url, `keys-${randomUUID()}`);
        const [first, second] = [0, 1].map(() => new LockManager({ backend }));
        const lock = await first!.acquire(key);
        expect(await second!.tryAcquire(key)).toBeNull();
        // A key that encodes like another must still be a different lock.
        const lookalike = await second!.tryAcquire(`${key}x`);
        expect(lookalike).not.toBeNull();
        await lookalike?.release();
        expect((await backend.inspection?.inspect({ key }))?.holders).toHaveLength(1);
        await lock.release();
      });

      // Every kind of client, with the adapter's defaults and each of its backend variants.
      const wakeUpCases = ['default', ...(clients.variants ?? [])].flatMap((variant) =>
        [['', {}] as const, ...Object.entries(options.backendVariants ?? {})].map(
          ([backendVariant, backendOptions]) =>
            [
              `${variant} client${backendVariant && `, ${backendVariant}`}`,
              variant === 'default' ? {} : { variant },
              backendOptions,
            ] as const,
        ),
      );
      it.each(wakeUpCases)(
        'wakes a waiter through pub/sub when the holder releases (%s)',
        async (_, settings, backendOptions) => {
          const prefix = `wake-${randomUUID()}`;
          const holder = await open(deployment.url, prefix, settings, backendOptions);
          const waiter = await open(deployment.url, prefix, settings, backendOptions);
          // The holder's lease outlasts the wait, so its retry hint cannot serve the waiter.
          const held = await new LockManager({ backend: holder.backend }).acquire('report', {
            ttl: 120_000,
          });
          // Racing instead of queueing, so that no renewal of a queue place asks again.
          const giveUp = new AbortController();
          closers.push(async () => giveUp.abort());
          const waiting = new LockManager({ backend: waiter.backend, ...NO_POLLING }).acquire(
            'report',
            { wait: 60_000, fair: false, signal: giveUp.signal },
          );
          waiting.catch(() => undefined);
          // A client's keyPrefix starts the channel's name, as it starts the lock's.
          const listening = async () => (await channels(deployment, `*${prefix}:{report}`)).length;
          await eventually('the waiter listens', async () => (await listening()) === 1, 10_000);
          await held.release();
          const next = await wokenOrNot(waiting);
          expect(next).not.toBe('no wake-up');
          if (next === 'no wake-up') return;
          expect(next.fence).toBeGreaterThan(held.fence);
          await next.release();
        },
      );

      // Counts connections to the one master (a cluster's subscriber has one per node).
      if (topology !== 'cluster') {
        it('serves 100 waiters on 25 keys over one subscriber connection, kept for the next waiters and closed by close()', async () => {
          const name = `subscriber-${randomUUID().slice(0, 8)}`;
          const { client, backend } = await open(deployment.url, name, { connectionName: name });
          const [server] = await deployment.masters();
          const connections = (type?: 'pubsub') => connectionsNamed(server!, name, type);
          const subscriber = clients.subscriberConnections ?? { subscribed: 1, idle: 1 };
          await eventually('the client is connected', async () => (await connections()) === 1);
          const round = async () => {
            const controller = new AbortController();
            // One signal shared by 100 waits is intended here: without this Node warns of a leak.
            setMaxListeners(100, controller.signal);
            const waits = Array.from({ length: 100 }, (_, index) =>
              backend.wakeUps
                ?.waitForRelease({ key: `key ${index % 25}`, signal: controller.signal })
                .catch(() => undefined),
            );
            const subscribed = async () => (await channels(deployment, underPrefix(name))).length;
            await eventually('25 channels are subscribed', async () => (await subscribed()) === 25);
            expect(await connections('pubsub')).toBe(1);
            expect(await connections()).toBe(1 + subscriber.subscribed);
            // Four waiters on one key share one subscription.
            expect(await subscribers(deployment, `${name}:{key 0}`)).toBe(1);
            controller.abort();
            await Promise.all(waits);
            await eventually(
              'every channel is unsubscribed',
              async () => (await subscribed()) === 0,
            );
            // The connection itself stays for the next waiters.
            expect(await connections()).toBe(1 + subscriber.idle);
          };
          await round();
          await round();
          await backend.close?.();
          await eventually('the subscriber is gone', async () => (await connections()) === 1);
          // The user's client is untouched.
          expect(await clients.ping(client)).toBe('PONG');
        });
      }

      it('close() rejects pending waiters and later calls with BackendError naming the library, and leaves the client usable', async () => {
        const prefix = `close-${randomUUID()}`;
        const { client, backend } = await open(deployment.url, prefix);
        const signal = new AbortController().signal;
        // The first wait resolves as soon as its subscription is in place; the second one waits.
        await backend.wakeUps?.waitForRelease({ key: 'k', signal });
        const pending = failureOf(() => backend.wakeUps?.waitForRelease({ key: 'k', signal }));
        await sleep(50);
        await backend.close?.();
        const error = await pending;
        expect(error).toBeInstanceOf(BackendError);
        expect((error as Error).message).toMatch(namesLibrary);
        expect(await failureOf(() => backend.acquire(request('k')))).toBeInstanceOf(BackendError);
        const waitAfter = () => backend.wakeUps?.waitForRelease({ key: 'k', signal });
        expect(await failureOf(waitAfter)).toBeInstanceOf(BackendError);
        await backend.close?.();
        expect(await clients.ping(client)).toBe('PONG');
        const again = construct(client, { prefix });
        closers.push(async () => again.close?.());
        expect((await again.acquire(request('k'))).ok).toBe(true);
      });
    });

    if (topology === 'cluster') {
      describe('what only a cluster has', () => {
        it('spreads locks over many slots and holds each', async () => {
          const prefix = `spread-${randomUUID()}`;
          const { backend } = await open(deployment.url, prefix);
          const locks = new LockManager({ backend });
          const keys = Array.from({ length: 100 }, (_, index) => `spread:${index}`);
          const held = await Promise.all(keys.map((key) => locks.acquire(key)));
          const slots = new Set(await slotsOf(deployment, prefix, keys));
          expect(slots.size).toBeGreaterThan(50);
          expect(await Promise.all(keys.map((key) => locks.tryAcquire(key)))).toEqual(
            keys.map(() => null),
          );
          expect(await Promise.all(held.map((lock) => lock.release()))).toEqual(
            keys.map(() => true),
          );
        });

        it('keeps the held lock, its renewals, its release and the waiter behind it through a slot migration', async () => {
          // Three clients, as three processes would have, on one prefix so that they contend.
          const prefix = `migration-${randomUUID()}`;
          const [holder, waiter, prober] = await Promise.all(
            [0, 1, 2].map(() => open(deployment.url, prefix)),
          );
          const key = 'moving:key';
          const lock = await new LockManager({ backend: holder!.backend }).acquire(key, {
            ttl: 5_000,
          });
          const waiting = new LockManager({
            backend: waiter!.backend,
            backoff: { initialMs: 60_000, maxMs: 60_000 },
          }).acquire(key, { wait: 10_000 });
          // Awaited below; until then a rejection must not count as unhandled.
          waiting.catch(() => undefined);
          const probe = new LockManager({ backend: prober!.backend });

          // Calls made while the slot migrates are answered once it has moved, not failed.
          const [slot] = await slotsOf(deployment, prefix, [key]);
          const during = await migrateSlot(deployment, slot!, () =>
            Promise.all([probe.tryAcquire(key), lock.extend(5_000)]),
          );
          expect(during).toEqual([null, undefined]);

          // The lease moved with its keys: it still excludes others, and renews on the new owner.
          expect(await probe.tryAcquire(key)).toBeNull();
          await lock.extend(5_000);
          expect(lock.held).toBe(true);
          expect(await probe.tryAcquire(key)).toBeNull();

          expect(await lock.release()).toBe(true);
          const next = await waiting;
          expect(next.held).toBe(true);
          expect(next.fence).toBeGreaterThan(lock.fence);
          expect(await next.release()).toBe(true);
        });

        it('refuses the first acquire when any master evicts, even one that does not hold the lock', async () => {
          const prefix = `evicting-${randomUUID()}`;
          const key = 'report';
          const [slot] = await slotsOf(deployment, prefix, [key]);
          const masters = await clusterMasters(deployment, slot!);
          expect(masters).toHaveLength(3);
          // A master that does not hold the lock: the check must not stop at the lock's own server.
          const bystander = masters.find((master) => !master.ownsSlot)!.node;
          const evicts = (policy: string, bytes: string) =>
            bystander.call('CONFIG', 'SET', 'maxmemory', bytes, 'maxmemory-policy', policy);
          try {
            await evicts('allkeys-lru', '100mb');
            const { backend } = await open(deployment.url, prefix);
            const locks = new LockManager({ backend });
            const error = await failureOf(() => locks.acquire(key, { wait: 0 }));
            expect(error).toBeInstanceOf(BackendError);
            expect((error as Error).message).toMatch(namesLibrary);
            expect((error as Error).message).toMatch(
              /refusing to lock .*maxmemory-policy is allkeys-lru with maxmemory 104857600 on 1 of 3 servers$/,
            );
            await evicts('noeviction', '0');
            const lock = await locks.acquire(key, { wait: 0 });
            expect(await lock.release()).toBe(true);
          } finally {
            // The tests after share this cluster.
            await evicts('noeviction', '0');
          }
        });

        // Timeout: a cluster of its own to start, then a failover to wait for, on a busy machine.
        it('signals every lock that may be lost when a master dies, and keeps working after the replica takes over', async () => {
          // A master dies here: a cluster of this test's own, so the tests after keep theirs.
          const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
          // Stopped last, after the backend and the client on it.
          closers.unshift(() => cluster.stop());
          const [first] = cluster.rootNodes;
          const { backend } = await open(
            `redis://${first?.host}:${first?.port}`,
            `failover-${randomUUID()}`,
          );
          const locks = new LockManager({ backend });
          const keys = Array.from({ length: 30 }, (_, index) => `failover:${index}`);
          const held = await Promise.all(
            keys.map((key) => locks.acquire(key, { ttl: 2_000, autoExtend: true })),
          );
          const [victim] = await cluster.masters();
          await victim!.kill();
          await cluster.waitUntilHealthy(30_000);
          // Either the holder was told (signal aborted) or its lease is still on the (new) master.
          for (const lock of held) {
            if (lock.signal.aborted) continue;
            // The client learns the new slot owner on its own schedule: retry until it does.
            let info: LockInfo | null | undefined = null;
            for (let attempt = 0; ; attempt++) {
              try {
                info = await backend.inspection?.inspect({ key: lock.key });
                break;
              } catch (error) {
                if (attempt >= 50) throw error;
                await sleep(200);
              }
            }
            // Still held, unless the lease was lost since and the holder was told.
            if (!lock.signal.aborted) {
              expect(info?.holders.map((holder) => holder.token)).toContain(lock.token);
            }
          }
          const again = await Promise.all(
            keys.map((key) => locks.acquire(`${key}:after`, { wait: 20_000 })),
          );
          expect(again.every((lock) => lock.held)).toBe(true);
          await Promise.all([...held, ...again].map((lock) => lock.release().catch(() => false)));
        }, 120_000);
      });
    }

    if (topology === 'sentinel') {
      describe('when the master fails over', () => {
        /** A Sentinel deployment of this test's own, stopped after the clients on it. */
        async function ownDeployment() {
          const sentinel = await startRedisSentinel();
          closers.unshift(() => sentinel.stop());
          return sentinel;
        }

        /** One hold of the contended key, as its holder saw it. */
        interface Hold {
          /** When acquire() resolved and when release() was called: inside the lease at the server. */
          start: number;
          end: number;
          fence: number;
          /** Neither signalled lost nor told by release() that the lease was gone. */
          clean: boolean;
        }

        it.each([
          ['SENTINEL FAILOVER', (sentinel: RedisSentinelDeployment) => sentinel.failover()],
          ['a killed master', (sentinel: RedisSentinelDeployment) => sentinel.killMaster()],
        ])(
          'under contention through %s: holders not signalled lost never overlap, fences grow with time, and every contender locks again after',
          async (_, failOver) => {
            const sentinel = await ownDeployment();
            const prefix = `failover-${randomUUID()}`;
            const contenders = await Promise.all(
              [0, 1, 2, 3].map(() => open(sentinel.url, prefix)),
            );
            const holds: Hold[] = [];
            const after = contenders.map(() => 0);
            let failedOver = false;
            let stopping = false;
            const loops = contenders.map(async ({ backend }, index) => {
              const locks = new LockManager({ backend });
              while (!stopping) {
                let lock: Lock;
                try {
                  lock = await locks.acquire('contended', { ttl: 3_000, wait: 5_000 });
                } catch {
                  // Refused or cut off while the master changes: try again, without spinning.
                  await sleep(50);
                  continue;
                }
                const start = performance.now();
                await sleep(5);
                const end = performance.now();
                const released = await lock.release().catch(() => false);
                holds.push({ start, end, fence: lock.fence, clean: released });
                if (failedOver && released) after[index] = (after[index] ?? 0) + 1;
              }
            });
            try {
              await eventually('the contenders take turns', () => holds.length >= 20, 30_000);
              await failOver(sentinel);
              failedOver = true;
              // Generous: the clients find the new master through the sentinels in their own time.
              await eventually(
                'every contender locks again on the new master',
                () => after.every((count) => count >= 3),
                90_000,
              );
            } finally {
              stopping = true;
              await Promise.all(loops);
            }
            const clean = holds.filter((hold) => hold.clean).sort((a, b) => a.start - b.start);
            // A hold that starts before every earlier one has ended overlaps one of them.
            let endedBy = 0;
            const overlaps = clean.filter((hold) => {
              const overlapping = hold.start < endedBy;
              endedBy = Math.max(endedBy, hold.end);
              return overlapping;
            });
            expect(overlaps).toEqual([]);
            // Fences come from the server clock, so even a lease the new master never got is
            // followed by a greater fence: a resource that checks them turns the old holder away.
            const byStart = [...holds].sort((a, b) => a.start - b.start);
            const backwards = byStart.flatMap((hold, index) =>
              byStart
                .slice(index + 1)
                .filter((later) => later.start > hold.end && later.fence <= hold.fence)
                .map((later) => ({ hold, later })),
            );
            expect(backwards).toEqual([]);
          },
          // Two failovers' worth of sentinel agreement and client rediscovery, on a busy machine.
          180_000,
        );

        it('signals a holder whose lease never reached the new master, keeps one whose lease did, and gives the next holder a greater fence', async () => {
          const sentinel = await ownDeployment();
          const prefix = `lost-write-${randomUUID()}`;
          const holder = await open(sentinel.url, prefix);
          const next = await open(sentinel.url, prefix);
          const locks = new LockManager({ backend: holder.backend });
          const doomed = await locks.acquire('doomed', { ttl: 3_000, autoExtend: true });
          const kept = await locks.acquire('kept', { ttl: 60_000 });
          const lost = lostAt(doomed);
          const master = await sentinel.master();
          const replica = sentinel.nodes.find((node) => node.port !== master.port);
          if (replica === undefined) throw new Error('no replica');
          const replicated = async () =>
            Number(await replica.call('EXISTS', `${prefix}:{doomed}`, `${prefix}:{kept}`)) === 2;
          await eventually('both leases reach the replica', replicated, 10_000);
          // Replication is asynchronous: what the master acknowledged may not have reached the
          // replica when it takes over. Made certain here by deleting the lease on the replica.
          await replica.call('CONFIG', 'SET', 'replica-read-only', 'no');
          await replica.call('DEL', `${prefix}:{doomed}`);
          await replica.call('CONFIG', 'SET', 'replica-read-only', 'yes');
          await sentinel.failover();
          // The next holder gets the key the new master does not know is held; the old holder
          // learns at its next renewal at the latest.
          const taken = await new LockManager({ backend: next.backend }).acquire('doomed', {
            wait: 60_000,
          });
          await lost;
          expect(doomed.signal.reason).toBeInstanceOf(LockLostError);
          expect(taken.fence).toBeGreaterThan(doomed.fence);
          expect(await doomed.release()).toBe(false);
          // The lease that did replicate is still held, and renews on the new master.
          await eventually(
            'the kept lease renews on the new master',
            () =>
              kept.extend().then(
                () => true,
                (error: unknown) => {
                  if (error instanceof LockLostError) throw error;
                  return false;
                },
              ),
            60_000,
          );
          expect(kept.signal.aborted).toBe(false);
          expect(await kept.release()).toBe(true);
          expect(await taken.release()).toBe(true);
        }, 180_000);
      });
    }

    // A cluster fails a master over in 'what only a cluster has'.
    if (topology === 'server') {
      describe('when the server fails', () => {
        // Killed, paused and restarted here, so these tests have a server to themselves.
        let faulty: RedisServer;
        beforeAll(async () => {
          faulty = await startRedis();
        });
        afterEach(async () => {
          await faulty.resume().catch(() => undefined);
        });
        afterAll(async () => {
          await faulty?.stop();
        });

        /** Whether `client` answers `PING` now. */
        const answers = (client: Client) =>
          clients.ping(client).then(
            (reply) => reply === 'PONG',
            () => false,
          );

        /**
         * A lock auto-extended through a client of `settings`, whose signal must abort before its
         * lease could expire once the server dies; resolves when the server is back, empty.
         */
        async function holdThroughCrash(settings: RedisClientSettings) {
          const { client, backend } = await open(faulty.url, `crash-${randomUUID()}`, settings);
          await eventually('the client is connected', () => answers(client), 20_000);
          const locks = new LockManager({ backend });
          const lock = await locks.acquire('crash', { ttl: 1_000, autoExtend: true });
          const lost = lostAt(lock);
          await faulty.kill();
          expect(await lost).toBeLessThan(lock.expiresAt);
          expect(lock.signal.reason).toBeInstanceOf(LockLostError);
          await faulty.restart();
          return { client, locks };
        }

        it('with commands failing fast, aborts lock.signal before the lease could expire when the server dies, then reloads the scripts after a restart', async () => {
          const { client, locks } = await holdThroughCrash({ failFast: true });
          // Nothing was queued during the outage to run (and load a script) once it reconnects.
          expect(await cachedScripts(faulty)).toBe(0);
          await eventually('the client reconnected', () => answers(client), 20_000);
          const again = await locks.acquire('crash');
          expect(await cachedScripts(faulty)).toBeGreaterThan(0);
          expect(await again.release()).toBe(true);
        });

        it('with default client settings, aborts lock.signal before the lease could expire when the server dies, and locks after a restart', async () => {
          const { locks } = await holdThroughCrash({});
          const again = await locks.acquire('crash', { wait: 20_000 });
          expect(again.held).toBe(true);
          expect(await again.release()).toBe(true);
        });

        it('aborts lock.signal before the lease could expire while the server is paused, and carries on after', async () => {
          const { backend } = await open(faulty.url, `pause-${randomUUID()}`);
          const locks = new LockManager({ backend });
          const lock = await locks.acquire('pause', { ttl: 1_000, autoExtend: true });
          const lost = lostAt(lock);
          await faulty.pause();
          expect(await lost).toBeLessThan(lock.expiresAt);
          expect(lock.signal.reason).toBeInstanceOf(LockLostError);
          await faulty.resume();
          // The renewal sent during the pause may still be applied: the next holder waits it out.
          const next = await locks.acquire('pause', { wait: 10_000 });
          expect(next.fence).toBeGreaterThan(lock.fence);
          expect(await next.release()).toBe(true);
        });

        it.each([
          ['fair', true],
          ['racing', false],
        ])(
          'ends a %s acquire at its wait while the server does not answer, saying so, and gives back the grant the server applies late',
          async (_, fair) => {
            // A link that stops forwarding: the client keeps its connection and waits for replies.
            await using proxy = await startFaultProxy(faulty);
            const prefix = `unanswered-${randomUUID()}`;
            const { backend } = await open(proxy.url, prefix);
            const locks = new LockManager({ backend });
            // Connected, scripts loaded and the eviction check passed: only the link is missing.
            await (await locks.acquire('warm')).release();
            proxy.blackhole();
            const startedAt = Date.now();
            const error = await failureOf(() =>
              locks.acquire('k', { wait: 2_000, ttl: 60_000, fair }),
            );
            // Generous: the bound is `wait` (a request gets at least a second), not a client's retries.
            expect(Date.now() - startedAt).toBeLessThan(2_000 + 5_000);
            expect(error).toBeInstanceOf(LockTimeoutError);
            expect(error).toMatchObject({ key: 'k', unanswered: true });
            expect((error as Error).message).toMatch(/the backend did not answer/);
            // The request was held, not lost: once the link heals, the server applies it, and the
            // lock it granted to nobody is given back long before its 60 s lease could end.
            proxy.heal();
            const name = `${prefix}:{k}`;
            await eventually(
              'the late request reached the server',
              async () => (await faulty.call('HEXISTS', name, 'fence')) === 1,
              20_000,
            );
            const direct = await open(faulty.url, prefix);
            await eventually(
              'its grant was given back',
              async () => (await direct.backend.inspection?.inspect({ key: 'k' })) === null,
              20_000,
            );
          },
        );

        it('ends an acquire at its wait while the server is down, saying why', async () => {
          const { backend } = await open(faulty.url, `down-${randomUUID()}`);
          const locks = new LockManager({ backend });
          await (await locks.acquire('warm')).release();
          await faulty.kill();
          try {
            const startedAt = Date.now();
            const error = await failureOf(() => locks.acquire('k', { wait: 2_000 }));
            // Generous: the bound is `wait`, not the client's retries (ioredis: about 10 s).
            expect(Date.now() - startedAt).toBeLessThan(2_000 + 5_000);
            if (error instanceof BackendError) {
              // Sent before the client saw the connection close, and failed by it.
              expect((error as Error).message).toMatch(namesLibrary);
            } else {
              // Held by the client while it reconnects: the wait runs out on it.
              expect(error).toBeInstanceOf(LockTimeoutError);
              expect(error).toMatchObject({ key: 'k', unanswered: true });
              expect((error as Error).message).toMatch(/the backend did not answer/);
            }
          } finally {
            await faulty.restart();
          }
        });

        it('keeps waking a waiter through pub/sub after the server restarts under it', async () => {
          const prefix = `restart-${randomUUID()}`;
          const holder = await open(faulty.url, prefix);
          const waiter = await open(faulty.url, prefix);
          const holders = new LockManager({ backend: holder.backend });
          const subscribed = () =>
            subscribers(single(faulty), `${prefix}:{k}`).then(
              (count) => count === 1,
              () => false,
            );
          // The subscription is in place before the waiter starts (a first wait ends as soon as
          // its new subscription is), and a parked wait keeps it, so the waiter's own waits end
          // on a release only.
          const wakeUps = waiter.backend.wakeUps as WakeUpCapability;
          const parking = new AbortController();
          await wakeUps.waitForRelease({ key: 'k', signal: parking.signal });
          const parked = wakeUps.waitForRelease({ key: 'k', signal: parking.signal });
          parked.catch(() => undefined);
          // The restart must find the waiter waiting, not asking: ioredis would send a request in
          // flight again once the server is back, and it would take the key the restart freed
          // before the holder could; node-redis would fail it.
          let waiterIsWaiting = false;
          // Only a wake-up can serve the waiter within the test: it does not poll, and it races
          // rather than queues (a queued waiter asks again every half second to keep its place).
          const waiters = new LockManager({
            backend: {
              acquire: (request) => waiter.backend.acquire(request),
              extend: (request) => waiter.backend.extend(request),
              release: (request) => waiter.backend.release(request),
              wakeUps: {
                waitForRelease: (request) => {
                  waiterIsWaiting = true;
                  return wakeUps.waitForRelease(request).finally(() => {
                    waiterIsWaiting = false;
                  });
                },
              },
            },
            ...NO_POLLING,
          });
          await holders.acquire('k', { ttl: 60_000 });
          const waiting = waiters.acquire('k', { wait: 60_000, fair: false });
          waiting.catch(() => undefined);
          await eventually('the waiter waits for a wake-up', async () => waiterIsWaiting, 20_000);
          await faulty.restart();
          await eventually('the subscriber subscribed again', subscribed, 20_000);
          // The restart emptied the server: a new holder takes the key, and its release must reach
          // the waiter over the re-established subscription.
          await eventually('the holder reconnected', () => answers(holder.client), 20_000);
          const held = await holders.acquire('k', { ttl: 60_000 });
          await held.release();
          const next = await wokenOrNot(waiting);
          expect(next).not.toBe('no wake-up');
          if (next !== 'no wake-up') await next.release();
          parking.abort();
          await parked.catch(() => undefined);
        });

        // A library whose clients reconnect for ever (Valkey GLIDE) has no client that gave up.
        const canGiveUp = clients.canGiveUp ?? true;
        it.runIf(canGiveUp)(
          'connects a subscriber that gave up reconnecting again when a waiter needs it',
          async () => {
            const prefix = `gave-up-${randomUUID()}`;
            const holder = await open(faulty.url, prefix);
            const waiter = await open(faulty.url, prefix, { reconnect: false });
            // Open the subscriber (a first wait resolves once subscribed), then lose it for good.
            const signal = new AbortController().signal;
            await waiter.backend.wakeUps?.waitForRelease({ key: 'before', signal });
            await faulty.restart();
            // The server is back: a client that still fails has given up.
            await eventually(
              'the waiter client gave up',
              async () => !(await answers(waiter.client)),
            );
            await clients.reconnect(waiter.client);
            await eventually('the holder reconnected', () => answers(holder.client), 20_000);

            const held = await new LockManager({ backend: holder.backend }).acquire('after', {
              ttl: 60_000,
            });
            // Only a wake-up can serve the waiter within the test (see above).
            const waiting = new LockManager({ backend: waiter.backend, ...NO_POLLING }).acquire(
              'after',
              {
                wait: 60_000,
                fair: false,
              },
            );
            waiting.catch(() => undefined);
            const subscribed = async () =>
              (await subscribers(single(faulty), `${prefix}:{after}`)) === 1;
            await eventually('the waiter is subscribed', subscribed, 20_000);
            await held.release();
            const next = await wokenOrNot(waiting);
            expect(next).not.toBe('no wake-up');
            if (next !== 'no wake-up') await next.release();
          },
        );
      });
    }
  });
}
