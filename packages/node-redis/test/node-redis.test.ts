import { nodeRedisTestClients, runRedisAdapterSuite } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import * as redis6 from 'redis';
import * as redis5 from 'redis5';
import { NodeRedisBackend } from '../src/index.js';

// node-redis 5 has no keyPrefix.
for (const [major, redis, variants] of [
  [6, redis6],
  [5, redis5, ['RESP3']],
] as const) {
  runRedisAdapterSuite({
    name: `node-redis ${major}`,
    clients: nodeRedisTestClients(redis, variants),
    construct: (client, options) => new NodeRedisBackend(client as never, options as never),
    foreignClients: () => [
      { what: 'an ioredis client', client: new Redis({ lazyConnect: true }), says: /like ioredis/ },
      {
        what: 'a cluster',
        client: redis6.createCluster({ rootNodes: [] }),
        says: /ClusterBackend/,
      },
      { what: 'a client pool', client: redis6.createClientPool(), says: /pool cannot open a sub/ },
    ],
  });
}
