import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One vitest project per workspace package; each package's `test` script selects its own.
const packageDirs = ['packages', 'examples'].flatMap((group) =>
  readdirSync(new URL(`./${group}`, import.meta.url), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => `${group}/${entry.name}`),
);

export default defineConfig({
  test: {
    projects: packageDirs.map((dir) => ({
      test: {
        // `core`, `memory`, …; examples are `example-quickstart`, `example-ioredis`, …
        name: dir.startsWith('examples/') ? `example-${dir.split('/')[1]}` : dir.split('/')[1],
        root: fileURLToPath(new URL(`./${dir}`, import.meta.url)),
        include: ['test/**/*.test.ts'],
        // An example's test runs a whole program, which may start a cluster first: on a loaded
        // machine (turbo runs suites side by side on two cores) that alone took over 30 s.
        testTimeout: dir.startsWith('examples/') ? 120_000 : 30_000,
        hookTimeout: 60_000,
        // The memory backend's footprint tests collect garbage before they read the heap.
        ...(dir === 'packages/memory' ? { execArgv: ['--expose-gc'] } : {}),
      },
    })),
  },
});
