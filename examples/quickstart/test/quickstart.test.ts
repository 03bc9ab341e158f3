import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('runs: every worker holds the lock twice, with strictly increasing fences', async () => {
  const { stdout } = await run(process.execPath, ['dist/main.js'], { cwd: exampleDir });
  const grants = [...stdout.matchAll(/^(worker-\d) holds .* fence (\d+)$/gm)];
  expect(grants).toHaveLength(8);
  const fences = grants.map((grant) => Number(grant[2]));
  expect(fences).toEqual([...fences].sort((a, b) => a - b));
  expect(new Set(fences).size).toBe(8);
  for (const name of ['worker-1', 'worker-2', 'worker-3', 'worker-4']) {
    expect(grants.filter((grant) => grant[1] === name)).toHaveLength(2);
  }
  expect(stdout).toContain('done:');
});

it('loads from CommonJS with require() (Node >= 20.19)', async () => {
  const script = `
    const { LockManager } = require('@deadbolt/core');
    const { MemoryBackend } = require('@deadbolt/memory');
    console.log(typeof LockManager, typeof MemoryBackend);`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: exampleDir });
  expect(stdout.trim()).toBe('function function');
});
