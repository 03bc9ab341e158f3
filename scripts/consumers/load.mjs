// import of every package: Node picks each one's "import" build, which exports the same names.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const names = JSON.parse(process.argv[2]);
for (const name of names) {
  const imported = Object.keys(await import(name)).sort();
  const required = Object.keys(require(name)).sort();
  assert.deepEqual(imported, required, `import('${name}') and require('${name}') differ`);
}
