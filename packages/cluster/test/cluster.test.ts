import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendError, LockManager } from '@deadbolt/core';
import { lockKey } from '@deadbolt/redis-backend';
import { type RedisCluster, runBackendConformance, startRedisCluster } from '@deadbolt/testing';
import { Cluster, Redis } from 'ioredis';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterBackend } from '../src/index.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
});
afterAll(async () => {
  await cluster?.stop();
});

function ioredisCluster(): Cluster {
  const client = new Cluster([...cluster.rootNodes]);
  client.on('error', () => undefined);
  return client;
}

async function nodeRedisCluster() {
  const client = createCluster({
    rootNodes: cluster.rootNodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

const clients = new Map<ClusterBackend, () => Promise<void> | void>();
/** Each conformance backend's own prefix, so a SCAN of it lists what its test stored. */
const prefixes = new Map<ClusterBackend, string>();
const freshPrefix = () => `conformance-${randomUUID()}`;

/** Every key under `prefix` on every master: a SCAN per master, since each holds some slots. */
async function storedNames(backend: ClusterBackend): Promise<string[]> {
  const names = new Set<string>();
  for (const master of await cluster.masters()) {
    const probe = new Redis(master.port, master.host, { lazyConnect: true });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await probe.scan(cursor, 'MATCH', `${prefixes.get(backend)}:*`);
        cursor = next;
        for (const key of keys) names.add(key);
      } while (cursor !== '0');
    } finally {
      probe.disconnect();
    }
  }
  return [...names];
}

runBackendConformance({
  name: 'cluster (ioredis)',
  create: () => {
    const client = ioredisCluster();
    const prefix = freshPrefix();
    const backend = new ClusterBackend(client, { prefix });
    clients.set(backend, () => client.disconnect());
    prefixes.set(backend, prefix);
    return backend;
  },
  cleanup: (backend) => clients.get(backend)?.(),
  storedNames,
});

runBackendConformance({
  name: 'cluster (node-redis)',
  create: async () => {
    const client = await nodeRedisCluster();
    const prefix = freshPrefix();
    const backend = new ClusterBackend(client, { prefix });
    clients.set(backend, () => client.destroy());
    prefixes.set(backend, prefix);
    return backend;
  },
  cleanup: (backend) => clients.get(backend)?.(),
  storedNames,
});

describe('ClusterBackend on a real cluster', () => {
  it('spreads locks over many slots and holds each', async () => {
    const client = ioredisCluster();
    const backend = new ClusterBackend(client);
    try {
      const locks = new LockManager({ backend });
      const keys = Array.from({ length: 100 }, (_, index) => `spread:${index}`);
      const held = await Promise.all(keys.map((key) => locks.acquire(key)));
      const probe = new Redis(cluster.rootNodes[0]!.port, '127.0.0.1');
      const slots = new Set(
        await Promise.all(keys.map((key) => probe.cluster('KEYSLOT', lockKey('deadbolt', key)))),
      );
      probe.disconnect();
      expect(slots.size).toBeGreaterThan(50);
      expect(await Promise.all(keys.map((key) => locks.tryAcquire(key)))).toEqual(
        keys.map(() => null),
      );
      expect(await Promise.all(held.map((lock) => lock.release()))).toEqual(keys.map(() => true));
    } finally {
      await backend.close();
      client.disconnect();
    }
  });

  it('works classic pub/sub too', async () => {
    const client = ioredisCluster();
    const backend = new ClusterBackend(client, { pubsub: 'classic' });
    try {
      const [holder, waiter] = [0, 1].map(
        () => new LockManager({ backend, backoff: { initialMs: 60_000, maxMs: 60_000 } }),
      );
      const lock = await holder!.acquire('classic:key');
      const waiting = waiter!.acquire('classic:key', { wait: 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await lock.release();
      expect((await waiting).held).toBe(true);
    } finally {
      await backend.close();
      client.disconnect();
    }
  });

  it('rejects what is not a cluster client', () => {
    expect(() => new ClusterBackend({} as never)).toThrow('cluster');
    expect(() => new ClusterBackend(new Redis({ lazyConnect: true }) as never)).toThrow('cluster');
    const client = new Cluster([], { lazyConnect: true });
    expect(() => new ClusterBackend(client, { pubsub: 'fast' as never })).toThrow('options.pubsub');
    expect(() => new ClusterBackend(client, { prefix: '{x}' })).toThrow('options.prefix');
  });
});

/** An admin connection to one node; `call` sends any command. */
const adminOf = (node: { host: string; port: number }) => new Redis(node.port, node.host);

/**
 * Moves `slot` from the master that owns it to another master, keys included, the way
 * `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, MIGRATE of every key, then SETSLOT NODE
 * on every master. `whileMigrating` starts once the slot is MIGRATING, 200 ms before its keys
 * move: meanwhile the source refuses a script whose keys it holds only some of (TRYAGAIN).
 * Resolves what `whileMigrating` resolves.
 */
async function migrateSlot<T>(slot: number, whileMigrating: () => Promise<T>): Promise<T> {
  const masters = (await cluster.masters()).map((node) => ({ node, admin: adminOf(node) }));
  try {
    const withIds = await Promise.all(
      masters.map(async (master) => ({
        ...master,
        id: String(await master.admin.call('CLUSTER', 'MYID')),
      })),
    );
    const slotOwners = (await withIds[0]!.admin.call('CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number, string],
    ][];
    const ownerId = slotOwners.find(([from, to]) => from <= slot && slot <= to)?.[2][2];
    const source = withIds.find((master) => master.id === ownerId)!;
    const target = withIds.find((master) => master.id !== ownerId)!;
    await target.admin.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
    await source.admin.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id);
    const during = whileMigrating();
    // Awaited below; until then a rejection must not count as unhandled.
    during.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const keys = (await source.admin.call(
      'CLUSTER',
      'GETKEYSINSLOT',
      String(slot),
      '1000',
    )) as string[];
    expect(keys.length).toBeGreaterThan(0);
    await source.admin.call(
      'MIGRATE',
      target.node.host,
      String(target.node.port),
      '',
      '0',
      '5000',
      'KEYS',
      ...keys,
    );
    for (const master of [target, source, ...withIds.filter((m) => m !== target && m !== source)]) {
      await master.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
    }
    expect(await target.admin.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe(keys.length);
    return await during;
  } finally {
    for (const { admin } of masters) admin.disconnect();
  }
}

/** A cluster client of each library, with how to close it. */
const clusterClients = [
  [
    'ioredis',
    async () => {
      const client = ioredisCluster();
      return {
        backendOf: (prefix: string) => new ClusterBackend(client, { prefix }),
        close: () => client.disconnect(),
      };
    },
  ],
  [
    'node-redis',
    async () => {
      const client = await nodeRedisCluster();
      return {
        backendOf: (prefix: string) => new ClusterBackend(client, { prefix }),
        close: () => client.destroy(),
      };
    },
  ],
] as const;

describe.each(clusterClients)('ClusterBackend (%s) through a slot migration', (_, connect) => {
  it('keeps the held lock, its renewals, its release and the waiter behind it', async () => {
    // Three clients, as three processes would have, on one prefix so that they contend.
    const prefix = `migration-${randomUUID()}`;
    const clients = await Promise.all([connect(), connect(), connect()]);
    const [holderBackend, waiterBackend, probeBackend] = clients.map((client) =>
      client.backendOf(prefix),
    );
    try {
      const key = 'moving:key';
      const lock = await new LockManager({ backend: holderBackend! }).acquire(key, { ttl: 5_000 });
      const waiting = new LockManager({
        backend: waiterBackend!,
        backoff: { initialMs: 60_000, maxMs: 60_000 },
      }).acquire(key, { wait: 10_000 });
      // Awaited below; until then a rejection must not count as unhandled.
      waiting.catch(() => undefined);
      const probe = new LockManager({ backend: probeBackend! });

      const admin = adminOf(cluster.rootNodes[0]!);
      const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', lockKey(prefix, key)));
      admin.disconnect();
      // Calls made while the slot migrates are answered once it has moved, not failed.
      const during = await migrateSlot(slot, () =>
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
    } finally {
      for (const backend of [holderBackend, waiterBackend, probeBackend]) await backend!.close();
      for (const client of clients) client.close();
    }
  });
});

/** Cluster clients of each library with the `keyPrefix` each adds to the KEYS of EVALSHA. */
const prefixedClusterClients = [
  [
    'ioredis',
    async () => {
      const client = new Cluster([...cluster.rootNodes], { keyPrefix: 'app:' });
      client.on('error', () => undefined);
      return { client, close: () => client.disconnect() };
    },
  ],
  [
    'node-redis',
    async () => {
      const client = createCluster({
        rootNodes: cluster.rootNodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })),
        keyPrefix: 'app:',
      });
      client.on('error', () => undefined);
      await client.connect();
      return { client, close: () => client.destroy() };
    },
  ],
] as const;

/** Subscribers of `channel` on every node, of sharded or classic pub/sub. */
async function subscriberCount(channel: string, pubsub: 'sharded' | 'classic'): Promise<number> {
  let count = 0;
  for (const node of cluster.nodes) {
    const admin = adminOf(node);
    try {
      const command = pubsub === 'sharded' ? 'SHARDNUMSUB' : 'NUMSUB';
      const [, subscribers] = (await admin.call('PUBSUB', command, channel)) as [string, number];
      count += subscribers;
    } finally {
      admin.disconnect();
    }
  }
  return count;
}

describe.each(prefixedClusterClients)(
  "ClusterBackend (%s) under the client's keyPrefix",
  (_, connect) => {
    it.each(['sharded', 'classic'] as const)(
      'wakes a waiter through %s pub/sub when the holder releases',
      async (pubsub) => {
        const prefix = `key-prefix-${randomUUID()}`;
        const clients = await Promise.all([connect(), connect()]);
        const [holderBackend, waiterBackend] = clients.map(
          ({ client }) => new ClusterBackend(client, { prefix, pubsub }),
        );
        const giveUp = new AbortController();
        try {
          const key = 'woken';
          // The holder's lease outlasts the wait, so its retry hint cannot serve the waiter either.
          const lock = await new LockManager({ backend: holderBackend! }).acquire(key, {
            ttl: 120_000,
          });
          // Polling effectively off (the first retry comes after 300 s at the earliest), and racing
          // instead of queueing, so that no renewal of a queue place asks again: only the release's
          // message can wake the waiter before the deadline below.
          const waiting = new LockManager({
            backend: waiterBackend!,
            backoff: { initialMs: 600_000, maxMs: 600_000 },
          }).acquire(key, { wait: 60_000, fair: false, signal: giveUp.signal });
          // Awaited below; until then a rejection must not count as unhandled.
          waiting.catch(() => undefined);
          // The client publishes on the hash's name, which carries its keyPrefix.
          const channel = `app:${lockKey(prefix, key)}`;
          const deadline = Date.now() + 10_000;
          while ((await subscriberCount(channel, pubsub)) === 0) {
            if (Date.now() > deadline) throw new Error(`nobody subscribed to ${channel}`);
            await sleep(20);
          }
          await lock.release();
          const next = await Promise.race([waiting, sleep(15_000).then(() => 'no wake-up')]);
          expect(next).not.toBe('no wake-up');
          if (typeof next === 'string') return;
          expect(next.fence).toBeGreaterThan(lock.fence);
          expect(await next.release()).toBe(true);
        } finally {
          giveUp.abort();
          for (const backend of [holderBackend, waiterBackend]) await backend!.close();
          for (const { close } of clients) close();
        }
      },
    );
  },
);

describe.each(clusterClients)(
  'ClusterBackend (%s) on a cluster that may evict keys',
  (_, connect) => {
    it('refuses the first acquire when any master evicts, even one that does not hold the lock', async () => {
      const prefix = `evicting-${randomUUID()}`;
      const key = 'report';
      const probe = adminOf(cluster.rootNodes[0]!);
      const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', lockKey(prefix, key)));
      const slots = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      probe.disconnect();
      const ownerPort = slots.find(([from, to]) => from <= slot && slot <= to)?.[2][1];
      const masters = await cluster.masters();
      expect(masters).toHaveLength(3);
      // A master that does not hold the lock: the check must not stop at the lock's own server.
      const bystander = adminOf(masters.find((master) => master.port !== ownerPort)!);
      const client = await connect();
      try {
        await bystander.config('SET', 'maxmemory', '100mb', 'maxmemory-policy', 'allkeys-lru');
        const locks = new LockManager({ backend: client.backendOf(prefix) });
        const error = await locks.acquire(key, { wait: 0 }).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(BackendError);
        expect((error as BackendError).message).toMatch(
          /^\[deadbolt\] \[cluster\] refusing to lock .*maxmemory-policy is allkeys-lru with maxmemory 104857600 on 1 of 3 servers$/,
        );
        await bystander.config('SET', 'maxmemory', '0', 'maxmemory-policy', 'noeviction');
        const lock = await locks.acquire(key, { wait: 0 });
        expect(await lock.release()).toBe(true);
      } finally {
        await bystander.config('SET', 'maxmemory', '0', 'maxmemory-policy', 'noeviction');
        bystander.disconnect();
        client.close();
      }
    });
  },
);

describe('ClusterBackend through a failover', () => {
  it('signals every lock that may be lost when a master dies, and keeps working after the replica takes over', async () => {
    const client = ioredisCluster();
    const backend = new ClusterBackend(client);
    try {
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
        let info: Awaited<ReturnType<typeof backend.inspect>> = null;
        for (let attempt = 0; ; attempt++) {
          try {
            info = await backend.inspect(lock.key);
            break;
          } catch (error) {
            if (attempt >= 50) throw error;
            await new Promise((resolve) => setTimeout(resolve, 200));
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
      await victim!.restart();
    } finally {
      await backend.close();
      client.disconnect();
    }
  });
});
