import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('survives two of five servers dying and reports a QuorumError at three', async () => {
  const { stdout } = await run(process.execPath, ['dist/main.js'], { cwd: exampleDir });
  expect(stdout).toMatch(/acquired on a majority of 5, fence \d+/);
  expect(stdout).toMatch(/2 of 5 servers killed: still acquired, fence \d+ > \d+: true/);
  expect(stdout).toContain('3 of 5 killed: QuorumError, 3 members failed');
});
