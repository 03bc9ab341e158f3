// Builds one published package into dist/: every entry as ESM (.js, .d.ts) and CommonJS (.cjs,
// .d.cts), so `import`, `require()`, Jest's default mode, bundlers and TypeScript's node16
// CommonJS projects all load it. Run from the package's directory:
//   node ../../scripts/build-package.mjs index=src/index.ts [name=src/file.ts ...] [--esm-only bin=src/bin.ts ...]
// Entries after --esm-only (a CLI's bin, which may use top-level await) are built as ESM only and
// without declarations. Dependencies and peer dependencies stay external; nothing is minified, and
// no source or declaration maps are written: they would point at src/ files the tarball leaves out.
import { rmSync } from 'node:fs';
import { build } from 'tsup';

const dual = {};
const esmOnly = {};
let target = dual;
for (const argument of process.argv.slice(2)) {
  if (argument === '--esm-only') {
    target = esmOnly;
    continue;
  }
  const [name, file] = argument.split('=');
  if (!name || !file) throw new Error(`expected name=path, got ${argument}`);
  target[name] = file;
}
if (Object.keys(dual).length === 0) throw new Error('no entry to build: pass index=src/index.ts');

const shared = {
  outDir: 'dist',
  platform: 'node',
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
  sourcemap: false,
  // `node:` specifiers stay as written: some builtins exist only under that prefix.
  removeNodeProtocol: false,
  silent: true,
};

// A fresh dist/ each time: what an older build left (another layout, a removed entry) never ships.
rmSync('dist', { recursive: true, force: true });
await build({
  ...shared,
  entry: dual,
  format: ['esm', 'cjs'],
  // Entries share chunks in ESM; CommonJS entries each carry what they use (tsup's CommonJS
  // splitting rewrites the code through another transpiler).
  dts: true,
});
if (Object.keys(esmOnly).length > 0) {
  await build({ ...shared, entry: esmOnly, format: ['esm'], dts: false });
}
