import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startPostgres } from '@deadbolt/testing';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('runs against a PostgreSQL database: handoff, inspection, and the fence stopping a stale writer', async () => {
  await using database = await startPostgres();
  const { stdout } = await run(process.execPath, ['dist/main.js'], {
    cwd: exampleDir,
    env: { ...process.env, DATABASE_URL: database.url },
  });
  expect(stdout).toMatch(/alice holds report:1 with fence \d+/);
  expect(stdout).toContain('inspect: held by alice, 1 queued');
  expect(stdout).toMatch(/alice writes with fence \d+: accepted/);
  expect(stdout).toContain('bob was handed report:1 with a higher fence: true');
  expect(stdout).toMatch(/bob writes with fence \d+: accepted/);
  expect(stdout).toMatch(/alice writes again with fence \d+: rejected/);
});
