// Consumer tests: are the packages usable the way users install them? Packs every published
// package (`pnpm pack`), installs the tarballs into a project outside the workspace (in the OS's
// temporary directory, so nothing resolves through the workspace's node_modules), and there:
//   (a) bundles an app with esbuild (once through `import`, once through `require()`), moves the
//       bundle away from node_modules and runs it against a redis-server started here;
//   (b) runs Jest tests in Jest's default (CommonJS) mode: one on the memory backend, one on a
//       redis-server and one on a PostgreSQL database from @deadbolt/testing's harness (with no
//       vitest installed);
//   (c) compiles a TypeScript `module: node16` CommonJS project that imports every package, and
//       runs it;
//   (d) require()s and imports every package, and runs the CLI's bin.
// Any failure exits 1 and says which check failed. Run with `pnpm test:consumers` (which builds
// first); `--keep` keeps the temporary directory.
import { spawn } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = fileURLToPath(new URL('./consumers/', import.meta.url));
const keep = process.argv.includes('--keep');

/** The published packages: every packages/* whose package.json is not private. */
const published = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir, manifest: readJson(join(root, 'packages', dir, 'package.json')) }))
  .filter(({ manifest }) => !manifest.private);

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

class CheckFailed extends Error {}

/** Runs a command; rejects with its output when it exits non-zero or outlives `timeoutMs`. */
function run(command, args, { cwd, env, timeoutMs = 180_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new CheckFailed(
          `\`${[command, ...args].join(' ')}\` did not exit within ${timeoutMs} ms (does something keep the process alive?)\n${output}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else
        reject(
          new CheckFailed(
            `\`${[command, ...args].join(' ')}\` in ${cwd ?? process.cwd()} exited with ${code ?? signal}:\n${output}`,
          ),
        );
    });
  });
}

const timings = [];
/** Runs one named check, timing it; a failure names the check and stops the run. */
async function check(name, body) {
  const started = performance.now();
  try {
    await body();
  } catch (error) {
    const message = error instanceof CheckFailed ? error.message : (error?.stack ?? String(error));
    throw new CheckFailed(`consumer check failed: ${name}\n${message}`);
  }
  const seconds = (performance.now() - started) / 1000;
  timings.push([name, seconds]);
  console.log(`ok   ${name} (${seconds.toFixed(1)} s)`);
}

const work = mkdtempSync(join(tmpdir(), 'deadbolt-consumers-'));
const tarballs = join(work, 'tarballs');
const project = join(work, 'project');
let redis;
let failed = false;
const started = performance.now();
try {
  await check('pack every published package (pnpm pack)', async () => {
    mkdirSync(tarballs);
    // pnpm replaces the workspace: ranges of internal dependencies by the versions packed.
    await run(
      'npx',
      [
        '-y',
        'pnpm@10.34.9',
        '--recursive',
        ...published.map(({ manifest }) => `--filter=${manifest.name}`),
        'pack',
        '--pack-destination',
        tarballs,
      ],
      { cwd: root },
    );
    const packed = readdirSync(tarballs);
    if (packed.length !== published.length)
      throw new CheckFailed(`packed ${packed.join(', ')}, expected ${published.length} tarballs`);
    for (const file of readdirSync(tarballs)) {
      const listing = await run('tar', ['-tzf', join(tarballs, file)]);
      const stray = listing.split('\n').filter((path) => /\.map$|^package\/src\//.test(path));
      if (stray.length > 0) throw new CheckFailed(`${file} ships ${stray.join(', ')}`);
    }
  });

  await check('install the tarballs into a project outside the workspace (npm)', async () => {
    cpSync(fixtures, project, { recursive: true });
    // Every @deadbolt package, direct or internal dependency of another, comes from its tarball.
    const fromTarballs = Object.fromEntries(
      published.map(({ manifest }) => {
        const file = `${manifest.name.slice(1).replace('/', '-')}-${manifest.version}.tgz`;
        return [manifest.name, `file:${join(tarballs, file)}`];
      }),
    );
    const manifest = readJson(join(project, 'package.json'));
    manifest.dependencies = { ...fromTarballs, ...manifest.dependencies };
    manifest.overrides = fromTarballs;
    writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
      { cwd: project },
    );
  });

  await check('(d) require() and import every package; the CLI bin runs', async () => {
    const names = JSON.stringify(published.map(({ manifest }) => manifest.name));
    await run(process.execPath, ['load.cjs', names], { cwd: project });
    await run(process.execPath, ['load.mjs', names], { cwd: project });
    const version = await run(join(project, 'node_modules', '.bin', 'deadbolt'), ['--version'], {
      cwd: project,
    });
    const expected = published.find(({ dir }) => dir === 'cli').manifest.version;
    if (version.trim() !== expected)
      throw new CheckFailed(`deadbolt --version printed ${JSON.stringify(version)}`);
  });

  await check(
    "(b) Jest tests (memory backend; the harness, no vitest) in Jest's default mode",
    async () => {
      await run(process.execPath, ['node_modules/jest/bin/jest.js', '--ci', '--colors=false'], {
        cwd: project,
      });
    },
  );

  await check('(c) a TypeScript module: node16 CommonJS project compiles and runs', async () => {
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsc-cjs'], {
      cwd: project,
    });
    await run(process.execPath, ['tsc-cjs/out/main.js'], { cwd: project });
  });

  await check(
    '(a) esbuild bundles, moved away from node_modules, run against redis-server',
    async () => {
      const { startRedis } = await import(join(root, 'packages/testing/dist/index.js'));
      redis = await startRedis();
      // No node_modules in this directory or above it: the bundles carry everything they need.
      const out = join(work, 'bundles');
      for (const entry of ['app.mjs', 'app.cjs']) {
        const bundle = join(out, `${entry.replace('.', '-')}.bundle.cjs`);
        await run(
          join(project, 'node_modules', '.bin', 'esbuild'),
          [
            join('bundle', entry),
            '--bundle',
            '--platform=node',
            '--target=node20',
            '--format=cjs',
            '--log-level=warning',
            `--outfile=${bundle}`,
          ],
          { cwd: project },
        );
        await run(process.execPath, [bundle], {
          cwd: out,
          env: { REDIS_URL: redis.url, NODE_PATH: '' },
          timeoutMs: 30_000,
        });
      }
    },
  );
} catch (error) {
  failed = true;
  console.error(`\n${error instanceof CheckFailed ? error.message : (error?.stack ?? error)}`);
} finally {
  await redis?.stop();
  if (failed || keep) console.error(`(kept ${work} for a look)`);
  else rmSync(work, { recursive: true, force: true });
}
const total = ((performance.now() - started) / 1000).toFixed(1);
if (failed) {
  console.error(`consumer tests FAILED after ${total} s`);
  process.exit(1);
}
console.log(`consumer tests passed in ${total} s`);
