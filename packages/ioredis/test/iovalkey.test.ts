import { ioredisTestClients, runRedisAdapterSuite } from '@deadbolt/testing/conformance';
import * as iovalkey from 'iovalkey';
import { IoredisBackend } from '../src/index.js';

// iovalkey, the Valkey project's fork of ioredis, has the same client API: IoredisBackend takes
// its clients as they are, and its errors still name ioredis.
runRedisAdapterSuite({
  name: 'iovalkey',
  clients: ioredisTestClients(iovalkey),
  construct: (client, options) => new IoredisBackend(client as never, options as never),
});
