import { ioredisSentinelTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import * as ioredis from 'ioredis';
import { IoredisBackend } from '../src/index.js';

// new Redis({ sentinels, name }): the master found through three sentinels.
runRedisAdapterSuite({
  name: 'ioredis over Sentinel',
  clients: ioredisSentinelTestClients(ioredis),
  construct: (client, options) => new IoredisBackend(client as never, options as never),
});
