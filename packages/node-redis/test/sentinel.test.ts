import { nodeRedisSentinelTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import * as redis from 'redis';
import { NodeRedisBackend } from '../src/index.js';

// createSentinel({ name, sentinelRootNodes }): the master found through three sentinels.
runRedisAdapterSuite({
  name: 'node-redis over Sentinel',
  clients: nodeRedisSentinelTestClients(redis),
  construct: (client, options) => new NodeRedisBackend(client as never, options as never),
});
