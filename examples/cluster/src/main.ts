// deadbolt on a Redis Cluster. Names its nodes with REDIS_CLUSTER_NODES (host:port,host:port,…);
// without it, starts a 3-master, 3-replica cluster of local redis-server processes for the demo.
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterBackend } from '@deadbolt/cluster';
import { LockManager } from '@deadbolt/core';
import { startRedisCluster } from '@deadbolt/testing';
import { Cluster } from 'ioredis';

const named = process.env.REDIS_CLUSTER_NODES?.split(',').map((node) => {
  const [host = '127.0.0.1', port = '6379'] = node.trim().split(':');
  return { host, port: Number(port) };
});
const own = named ? undefined : await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
const nodes = named ?? [...(own?.rootNodes ?? [])];

const cluster = new Cluster(nodes);
const backend = new ClusterBackend(cluster, { prefix: 'example' });

// Locks on many keys land on every shard; each lock's keys share one hash tag, so one slot.
const workers = Array.from({ length: 4 }, () => new LockManager({ backend }));
let lastFence = 0;
let grants = 0;
await Promise.all(
  workers.map(async (locks, worker) => {
    for (let round = 0; round < 3; round++) {
      await locks.withLock('orders:nightly-export', async (lock) => {
        if (lock.fence <= lastFence) throw new Error('fence went backwards');
        lastFence = lock.fence;
        grants += 1;
        console.log(`worker-${worker} holds orders:nightly-export, fence ${lock.fence}`);
        await sleep(5);
      });
    }
  }),
);
const spread = await Promise.all(
  Array.from({ length: 20 }, (_, index) => workers[0]!.acquire(`tenant:${index}`)),
);
console.log(`held 20 tenant locks across the shards; ${grants} grants of the shared lock in order`);
await Promise.all(spread.map((lock) => lock.release()));

await backend.close();
cluster.disconnect();
await own?.stop();
