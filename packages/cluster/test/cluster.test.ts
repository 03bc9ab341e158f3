import { randomUUID } from 'node:crypto';
import { LockManager } from '@deadbolt/core';
import { lockKeys } from '@deadbolt/redis-scripts';
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
        await Promise.all(
          keys.map((key) => probe.cluster('KEYSLOT', lockKeys('deadbolt', key).holders)),
        ),
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
