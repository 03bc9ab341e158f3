import { runRedisAdapterSuite } from '@deadbolt/testing';
import * as ioredis from 'ioredis';
import { GlideBackend } from '../src/index.js';
import { glideClusterTestClients, glideTestClients } from './glide-clients.js';

runRedisAdapterSuite({
  name: 'valkey-glide (GlideClient)',
  clients: glideTestClients,
  construct: (client, options) => new GlideBackend(client as never, options as never),
  foreignClients: () => [
    {
      what: 'an ioredis client',
      client: new ioredis.Redis({ lazyConnect: true }),
      says: /looks like ioredis: use IoredisBackend/,
    },
  ],
});
