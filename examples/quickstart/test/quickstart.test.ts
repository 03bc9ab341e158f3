import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('runs: the stalled holder whose lease expired is refused by its fence', async () => {
  const { stdout } = await run(process.execPath, ['dist/main.js'], { cwd: exampleDir });
  const fence1 = Number(/^worker-1 {2}acquired report:daily, fence (\d+)/m.exec(stdout)?.[1]);
  const fence2 = Number(/^worker-2 {2}acquired report:daily, fence (\d+)/m.exec(stdout)?.[1]);
  expect(fence2).toBeGreaterThan(fence1);
  expect(stdout).toMatch(/^worker-2 {2}writes the report: accepted$/m);
  expect(stdout).toMatch(/lock1\.held is false/);
  expect(stdout).toContain(`refused it: fence ${fence1} is older than ${fence2}`);
  expect(stdout).toMatch(/^result: the store holds "report by worker-2"$/m);
});

it('loads from CommonJS with require() (Node >= 20.19)', async () => {
  const script = `
    const { LockManager } = require('@deadbolt/core');
    const { MemoryBackend } = require('@deadbolt/memory');
    console.log(typeof LockManager, typeof MemoryBackend);`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: exampleDir });
  expect(stdout.trim()).toBe('function function');
});
