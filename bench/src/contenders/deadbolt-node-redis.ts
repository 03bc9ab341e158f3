import { LockManager } from '@deadbolt/core';
import { NodeRedisBackend } from '@deadbolt/node-redis';
import { createClient } from 'redis';
import { type Contender, managerClient } from './types.js';

/** deadbolt with the library's defaults, over a node-redis client. */
export const deadboltNodeRedis: Contender = {
  id: 'deadbolt-node-redis',
  label: 'deadbolt + node-redis',
  library: '@deadbolt/node-redis (workspace), redis 6.3.1',
  settings: 'defaults',
  role: 'deadbolt',
  usesRedis: true,
  async open(redisUrl) {
    const client = await createClient({ url: redisUrl }).connect();
    const backend = new NodeRedisBackend(client);
    const locks = new LockManager({ backend });
    return managerClient(locks, async () => {
      await backend.close();
      client.destroy();
    });
  },
};
