// Redlock over five independent Redis servers: REDIS_URLS (comma-separated) names them; without
// it, the demo starts five local redis-server processes so it can also kill two of them.
import { LockManager, QuorumError, quorum } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { startRedisServers } from '@deadbolt/testing';
import { Redis } from 'ioredis';

const urls = process.env.REDIS_URLS?.split(',').map((url) => url.trim());
const own = urls ? undefined : await startRedisServers(5);
const clients = (urls ?? own?.map((server) => server.url) ?? []).map((url) => {
  // Fail fast while a server is down: the quorum goes on with the others.
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => undefined);
  return client;
});
await Promise.all(clients.map((client) => new Promise((resolve) => client.once('ready', resolve))));
const members = clients.map((client) => new IoredisBackend(client, { prefix: 'example' }));
const locks = new LockManager({ backend: quorum(members) });

const first = await locks.acquire('payments:settle');
console.log(`acquired on a majority of ${members.length}, fence ${first.fence}`);
await first.release();

if (own) {
  await own[0]!.kill();
  await own[1]!.kill();
  const second = await locks.acquire('payments:settle');
  console.log(
    `2 of 5 servers killed: still acquired, fence ${second.fence} > ${first.fence}: ${second.fence > first.fence}`,
  );
  await second.release();
  await own[2]!.kill();
  try {
    await locks.acquire('payments:settle', { wait: 500 });
  } catch (error) {
    if (!(error instanceof QuorumError)) throw error;
    console.log(
      `3 of 5 killed: QuorumError, ${error.causes.filter(Boolean).length} members failed`,
    );
  }
}

await Promise.all(members.map((member) => member.close()));
for (const client of clients) client.disconnect();
await Promise.all((own ?? []).map((server) => server.stop()));
