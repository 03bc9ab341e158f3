import {
  ioredisClusterTestClients,
  nodeRedisClusterTestClients,
  type RedisTestClients,
  runRedisAdapterSuite,
} from '@deadbolt/testing/conformance';
import * as ioredis from 'ioredis';
import * as ioredis5 from 'ioredis5';
import * as redis from 'redis';
import { describe, expect, it } from 'vitest';
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

describe('ClusterBackend', () => {
  it("refuses a pubsub option that is neither 'sharded' nor 'classic'", () => {
    const client = new ioredis.Cluster([], { lazyConnect: true });
    expect(() => new ClusterBackend(client, { pubsub: 'fast' as never })).toThrow('options.pubsub');
  });
});
