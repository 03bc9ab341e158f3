import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type PostgresDatabase, startPostgres } from '@deadbolt/testing';
import ts from 'typescript';
import { afterAll, beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const resolve = createRequire(import.meta.url).resolve;
let database: PostgresDatabase;
let dir: string;

beforeAll(async () => {
  database = await startPostgres();
  // The backend as plain JavaScript, so that a bare `node` child process can load it.
  dir = mkdtempSync(join(tmpdir(), 'deadbolt-postgres-process-'));
  const core = pathToFileURL(resolve('@deadbolt/core')).href;
  for (const name of ['index', 'notifications', 'sql']) {
    const source = readFileSync(new URL(`../src/${name}.ts`, import.meta.url), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(
      join(dir, `${name}.mjs`),
      outputText
        .replaceAll("'@deadbolt/core'", `'${core}'`)
        .replace(/'\.\/(\w+)\.js'/g, "'./$1.mjs'"),
    );
  }
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await database?.stop();
});

// A child process that starts Node and connects: 5–7 s beside a second CI run; the timeout only
// turns a process that never exits into a failure.
it('lets the process exit once the user ended the pool, without close(), after a wait', {
  timeout: 120_000,
}, async () => {
  const script = [
    `import pg from ${JSON.stringify(pathToFileURL(resolve('pg')).href)};`,
    `import { LockManager } from ${JSON.stringify(pathToFileURL(resolve('@deadbolt/core')).href)};`,
    `import { PostgresBackend } from ${JSON.stringify(pathToFileURL(join(dir, 'index.mjs')).href)};`,
    `const pool = new pg.Pool({ connectionString: ${JSON.stringify(database.url)} });`,
    `const backend = new PostgresBackend(pool, { table: 'exit_${randomUUID().slice(0, 8)}' });`,
    'const held = await new LockManager({ backend }).acquire("k");',
    // Another manager, as another process would be: it waits through the backend (LISTEN).
    'const waiting = new LockManager({ backend }).acquire("k");',
    'setTimeout(() => held.release(), 200);',
    'await (await waiting).release();',
    'await pool.end();',
    'console.log("pool ended");',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  expect(stdout.trim()).toBe('pool ended');
});
