import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startPostgres } from '@deadbolt/testing';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('keeps the newer holder update: the stalled holder is refused by its fence', async () => {
  await using database = await startPostgres();
  const { stdout } = await run(process.execPath, ['dist/main.js'], {
    cwd: exampleDir,
    env: { ...process.env, DATABASE_URL: database.url },
  });
  expect(stdout).toContain('balance starts at 100');
  expect(stdout).toMatch(/^worker-2: wrote 105 with fence \d+$/m);
  expect(stdout).toMatch(/^worker-1: refused: refused a write to acct-1 with fence \d+/m);
  expect(stdout).toContain('balance ends at 105 (100 + 5)');
});
