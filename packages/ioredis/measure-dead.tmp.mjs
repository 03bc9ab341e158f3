import { execSync } from 'node:child_process';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';

const [port, how] = process.argv.slice(2);
const client = new Redis(`redis://127.0.0.1:${port}`);
client.on('error', () => {});
const locks = new LockManager({ backend: new IoredisBackend(client) });
await (await locks.acquire('warm')).release();
execSync(
  how === 'down'
    ? `redis-cli -p ${port} shutdown nosave || true`
    : `kill -STOP $(cat /tmp/i15life-rs2.pid)`,
);
let t = Date.now();
const error = await locks.acquire('k', { wait: 2_000 }).catch((e) => e);
console.log(
  `acquire({ wait: 2000 }) with the server ${how}: ${Date.now() - t} ms -> ${error.name}: ${error.message}`,
);
t = Date.now();
const raw = await Promise.race([
  client.ping(),
  new Promise((_, r) => setTimeout(() => r(new Error('still no answer after 30 s')), 30_000)),
]).then(
  () => 'PONG',
  (e) => e.message,
);
console.log(`raw ioredis command with the server ${how}: ${Date.now() - t} ms -> ${raw}`);
client.disconnect();
