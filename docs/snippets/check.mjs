// Typechecks the ```ts blocks of the user guides in docs/: each block becomes a module in
// generated/ and `tsc` checks it against the packages' built types. (writing-a-backend.md shows
// fragments of one file, excerpts of the contract; the postgres package is its worked example.) Blocks that import a library this
// workspace does not install (the peers a migration starts from, Jest, the OpenTelemetry SDK)
// are listed and left out; their deadbolt side is checked in the examples that run them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const docs = fileURLToPath(new URL('..', import.meta.url));
const notInstalled = [
  'redlock',
  'redis-semaphore',
  '@jest/globals',
  '@opentelemetry/sdk-node',
  '@opentelemetry/exporter-prometheus',
  '@opentelemetry/exporter-trace-otlp-http',
];

rmSync(`${here}generated`, { recursive: true, force: true });
mkdirSync(`${here}generated`);
let checked = 0;
const guides = [
  'getting-started.md',
  'choosing-a-backend.md',
  'unit-testing.md',
  'fencing.md',
  'migrating.md',
  'observability.md',
  'operations.md',
];
for (const file of guides) {
  const text = readFileSync(`${docs}${file}`, 'utf8');
  let index = 0;
  for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = match[1] ?? '';
    const line = text.slice(0, match.index).split('\n').length;
    index += 1;
    const missing = notInstalled.find((name) => code.includes(`from '${name}'`));
    if (missing) {
      console.log(`skipped ${file}:${line} (imports ${missing})`);
      continue;
    }
    const name = `${file.replace(/\.md$/, '')}-${index}.ts`;
    writeFileSync(`${here}generated/${name}`, `// ${file}:${line}\n${code}\nexport {};\n`);
    checked += 1;
  }
}
console.log(`typechecking ${checked} samples`);
try {
  execFileSync(
    process.execPath,
    [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', here],
    {
      stdio: 'inherit',
    },
  );
} catch {
  console.error('a sample of the guides does not compile: see above (generated/<guide>-<n>.ts)');
  process.exit(1);
}
