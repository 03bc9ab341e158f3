import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedis } from '@deadbolt/testing';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('runs every job with never more than 3 permits out', async () => {
  await using redis = await startRedis();
  const { stdout } = await run(process.execPath, ['dist/main.js'], {
    cwd: exampleDir,
    env: { ...process.env, REDIS_URL: redis.url },
  });
  expect(stdout.match(/runs job \d+/g)).toHaveLength(16);
  const outs = [...stdout.matchAll(/(\d)\/3 permits out/g)].map((match) => Number(match[1]));
  expect(Math.max(...outs)).toBeLessThanOrEqual(3);
  expect(stdout).toMatch(/done: 16 jobs, at most [1-3] of 3 permits/);
});
