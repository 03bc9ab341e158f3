import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('runs on a cluster it starts: 12 ordered grants and 20 locks over the shards', async () => {
  const { stdout } = await run(process.execPath, ['dist/main.js'], { cwd: exampleDir });
  expect(stdout.match(/holds orders:nightly-export, fence \d+/g)).toHaveLength(12);
  expect(stdout).toContain('held 20 tenant locks across the shards; 12 grants');
});
