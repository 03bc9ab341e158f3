import { nodeRedisTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import { Redis } from 'ioredis';
import * as redis6 from 'redis';
import * as redis5 from 'redis5';
import { NodeRedisBackend } from '../src/index.js';

const adapter = {
  construct: (client: unknown, options?: unknown) =>
    new NodeRedisBackend(client as never, options as never),
  foreignClients: () => [
    { what: 'an ioredis client', client: new Redis({ lazyConnect: true }), says: /like ioredis/ },
    { what: 'a cluster', client: redis6.createCluster({ rootNodes: [] }), says: /ClusterBackend/ },
    { what: 'a client pool', client: redis6.createClientPool(), says: /pool cannot open a sub/ },
  ],
};
runRedisAdapterSuite({ name: 'node-redis 6', clients: nodeRedisTestClients(redis6), ...adapter });
// node-redis 5 has no keyPrefix.
const redis5Clients = nodeRedisTestClients(redis5, ['RESP3']);
runRedisAdapterSuite({ name: 'node-redis 5', clients: redis5Clients, ...adapter });
