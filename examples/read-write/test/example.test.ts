import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedis } from '@deadbolt/testing';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('lets readers share, serves the writer three times, and never tears a read', async () => {
  await using redis = await startRedis();
  const { stdout } = await run(process.execPath, ['dist/main.js'], {
    cwd: exampleDir,
    env: { ...process.env, REDIS_URL: redis.url },
  });
  expect(stdout.match(/writer: version \d+/g)).toHaveLength(3);
  const done = stdout.match(/done: (\d+) reads, up to (\d+) readers at once, (\d+) torn reads/);
  expect(done).not.toBeNull();
  expect(Number(done?.[2])).toBeGreaterThan(1);
  expect(Number(done?.[3])).toBe(0);
});
