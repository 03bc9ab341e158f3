import { ioredisTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import * as ioredis from 'ioredis';
import { createClient } from 'redis';
import { IoredisBackend } from '../src/index.js';

runRedisAdapterSuite({
  name: 'ioredis',
  clients: ioredisTestClients(ioredis),
  construct: (client, options) => new IoredisBackend(client as never, options as never),
  foreignClients: () => [
    { what: 'a node-redis client', client: createClient(), says: /looks like node-redis: use No/ },
    {
      what: 'an ioredis Cluster',
      client: new ioredis.Cluster([], { lazyConnect: true }),
      says: /is an ioredis Cluster; use ClusterBackend/,
    },
  ],
});
