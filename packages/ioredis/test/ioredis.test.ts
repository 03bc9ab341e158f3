import { ioredisTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import * as ioredis6 from 'ioredis';
import * as ioredis5 from 'ioredis5';
import { createClient } from 'redis';
import { IoredisBackend } from '../src/index.js';

// The peer range is ioredis ^5 || ^6: the whole adapter suite runs on each major.
for (const [name, ioredis] of [
  ['ioredis 6', ioredis6],
  ['ioredis 5', ioredis5],
] as const) {
  runRedisAdapterSuite({
    name,
    clients: ioredisTestClients(ioredis),
    construct: (client, options) => new IoredisBackend(client as never, options as never),
    foreignClients: () => [
      {
        what: 'a node-redis client',
        client: createClient(),
        says: /looks like node-redis: use No/,
      },
      {
        what: 'an ioredis Cluster',
        client: new ioredis.Cluster([], { lazyConnect: true }),
        says: /is an ioredis Cluster; use ClusterBackend/,
      },
    ],
  });
}
