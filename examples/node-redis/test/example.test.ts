import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedis } from '@deadbolt/testing';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('runs against a Redis and shows the fence stopping the stale writer', async () => {
  await using redis = await startRedis();
  const { stdout } = await run(process.execPath, ['dist/main.js'], {
    cwd: exampleDir,
    env: { ...process.env, REDIS_URL: redis.url },
  });
  expect(stdout).toMatch(/acquired invoice:42 with fence \d+/);
  expect(stdout).toContain('still held after 5 s on a 2 s lease: true');
  expect(stdout).toMatch(/fresh holder writes with fence \d+: accepted/);
  expect(stdout).toMatch(/stale holder writes with fence \d+: rejected/);
  expect(stdout).toContain('stale release() resolves false');
});
