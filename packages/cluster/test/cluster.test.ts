import { randomUUID } from 'node:crypto';
import { BackendError, type LockInfo, LockManager } from '@deadbolt/core';
import { lockKey } from '@deadbolt/redis-backend';
import { type RedisCluster, startRedisCluster } from '@deadbolt/testing';
import {
  ioredisClusterTestClients,
  nodeRedisClusterTestClients,
  type RedisTestClients,
  runRedisAdapterSuite,
} from '@deadbolt/testing/conformance';
import * as ioredis from 'ioredis';
import * as ioredis5 from 'ioredis5';
import * as redis from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterBackend } from '../src/index.js';

/** Cluster clients of each library (both ioredis majors of the peer range), as the shared suite makes them. */
const libraries: [string, RedisTestClients][] = [
  ['ioredis 6', ioredisClusterTestClients(ioredis)],
  ['ioredis 5', ioredisClusterTestClients(ioredis5)],
  ['node-redis', nodeRedisClusterTestClients(redis)],
];

for (const [library, clients] of libraries) {
  runRedisAdapterSuite({
    name: `cluster (${library})`,
    clients,
    construct: (client, options) => new ClusterBackend(client as never, options as never),
    backendVariants: { 'classic pub/sub': { pubsub: 'classic' } },
    foreignClients: () => [
      {
        what: 'an ioredis client',
        client: new ioredis.Redis({ lazyConnect: true }),
        says: /for a single server, use @deadbolt\/ioredis/,
      },
      {
        what: 'a node-redis client',
        client: redis.createClient(),
        says: /for a single server, use @deadbolt\/ioredis or @deadbolt\/node-redis/,
      },
    ],
  });
}

// What only a cluster has: slots spread over masters, slot migration, failover, and an eviction
// check that asks every master.
describe('ClusterBackend on its own cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  /** A client of `clients` on the cluster, and a way to close it. */
  async function connect(clients: RedisTestClients) {
    const [{ host, port }] = cluster.rootNodes as [{ host: string; port: number }];
    const client = await clients.connect(`redis://${host}:${port}`);
    return {
      backendOf: (prefix?: string) => new ClusterBackend(client as never, prefix ? { prefix } : {}),
      close: () => clients.close(client),
    };
  }

  it('spreads locks over many slots and holds each', async () => {
    const client = await connect(ioredisClusterTestClients(ioredis));
    const backend = client.backendOf();
    try {
      const locks = new LockManager({ backend });
      const keys = Array.from({ length: 100 }, (_, index) => `spread:${index}`);
      const held = await Promise.all(keys.map((key) => locks.acquire(key)));
      const probe = adminOf(cluster.rootNodes[0]!);
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
      client.close();
    }
  });

  it("refuses a pubsub option that is neither 'sharded' nor 'classic'", () => {
    const client = new ioredis.Cluster([], { lazyConnect: true });
    expect(() => new ClusterBackend(client, { pubsub: 'fast' as never })).toThrow('options.pubsub');
  });

  /** An admin connection to one node; `call` sends any command. */
  const adminOf = (node: { host: string; port: number }) => new ioredis.Redis(node.port, node.host);

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
      for (const master of [
        target,
        source,
        ...withIds.filter((m) => m !== target && m !== source),
      ]) {
        await master.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
      }
      expect(await target.admin.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe(keys.length);
      return await during;
    } finally {
      for (const { admin } of masters) admin.disconnect();
    }
  }

  describe.each(libraries)('with %s, through a slot migration', (_, clients) => {
    it('keeps the held lock, its renewals, its release and the waiter behind it', async () => {
      // Three clients, as three processes would have, on one prefix so that they contend.
      const prefix = `migration-${randomUUID()}`;
      const connections = await Promise.all([connect(clients), connect(clients), connect(clients)]);
      const [holderBackend, waiterBackend, probeBackend] = connections.map((connection) =>
        connection.backendOf(prefix),
      );
      try {
        const key = 'moving:key';
        const lock = await new LockManager({ backend: holderBackend! }).acquire(key, {
          ttl: 5_000,
        });
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
        for (const connection of connections) connection.close();
      }
    });
  });

  describe.each(libraries)('with %s, on a cluster that may evict keys', (_, clients) => {
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
      const client = await connect(clients);
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
  });

  describe('through a failover', () => {
    it('signals every lock that may be lost when a master dies, and keeps working after the replica takes over', async () => {
      const client = await connect(ioredisClusterTestClients(ioredis));
      const backend = client.backendOf();
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
          let info: LockInfo | null = null;
          for (let attempt = 0; ; attempt++) {
            try {
              info = await backend.inspection.inspect({ key: lock.key });
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
        client.close();
      }
    });
  });
});
