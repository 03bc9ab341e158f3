import { LockManager } from '@deadbolt/core';
import { GlideBackend } from '@deadbolt/valkey-glide';
import { GlideClient } from '@valkey/valkey-glide';
import { type Contender, managerClient } from './types.js';

/** deadbolt with the library's defaults, over a Valkey GLIDE standalone client with its own. */
export const deadboltValkeyGlide: Contender = {
  id: 'deadbolt-valkey-glide',
  label: 'deadbolt + valkey-glide',
  library: '@deadbolt/valkey-glide (workspace), @valkey/valkey-glide 2.5.2',
  settings: 'defaults',
  role: 'deadbolt',
  usesRedis: true,
  async open(redisUrl) {
    const { hostname, port } = new URL(redisUrl);
    const client = await GlideClient.createClient({
      addresses: [{ host: hostname, port: Number(port) }],
    });
    const backend = new GlideBackend(client);
    const locks = new LockManager({ backend });
    return managerClient(locks, async () => {
      await backend.close();
      client.close();
    });
  },
};
