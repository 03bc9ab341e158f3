import { readFileSync } from 'node:fs';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { startPostgres, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { cli, freePort, randomId } from './helpers.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

describe('help and version', () => {
  it('--version and -V print the package version', async () => {
    for (const flag of ['--version', '-V']) {
      expect(await cli([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  it('--help names every command, every backend option and the exit codes', async () => {
    const { code, stdout, stderr } = await cli(['--help']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    for (const word of [
      'list [pattern]',
      'inspect <key>',
      'watch <key>',
      'release <key> --force',
    ]) {
      expect(stdout).toContain(word);
    }
    for (const option of ['--url', '--cluster', '--prefix', '--table', '--schema', '--json']) {
      expect(stdout).toContain(option);
    }
    expect(stdout).toContain('Exit codes: 0 ok, 1 usage error, 2 backend');
    expect(await cli(['help'])).toEqual({ code: 0, stdout, stderr: '' });
  });

  it.each([
    ['list', 'Usage: deadbolt list [pattern]'],
    ['inspect', 'Usage: deadbolt inspect <key>'],
    ['watch', '--interval <seconds>'],
    ['release', '-y, --yes'],
  ])('%s --help, -h and help %s print the help of that command', async (command, says) => {
    const help = await cli([command, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(says);
    expect(await cli([command, '-h'])).toEqual(help);
    expect(await cli(['help', command])).toEqual(help);
  });
});

describe('usage errors exit with 1 and say what to do, before connecting', () => {
  it.each([
    [[], 'no command given'],
    [['frob'], "unknown command 'frob'"],
    [['list', '--url', 'redis://x', '--bogus'], "unknown option '--bogus'"],
    [['list', 'a', 'b', '--url', 'redis://x'], 'list takes one pattern at most'],
    [['inspect', '--url', 'redis://x'], 'inspect takes one key, got 0'],
    [['inspect', '', '--url', 'redis://x'], 'invalid key: must not be empty'],
    [['inspect', 'k', '--force', '--url', 'redis://x'], '--force is an option of release'],
    [['watch', 'k', '--interval', '0', '--url', 'redis://x'], '--interval expects seconds'],
    [['watch', 'k', '--interval', 'soon', '--url', 'redis://x'], '--interval expects seconds'],
    [['list'], 'no backend given'],
    [['list', '--url', 'http://x'], '--url must start with redis://'],
    [['list', '--url', 'redis://x', '--cluster', 'y:1'], '--url and --cluster each name a backend'],
    [['list', '--url', 'redis://x', '--table', 't'], '--table and --schema are for PostgreSQL'],
    [['list', '--url', 'postgres://x', '--prefix', 'p'], '--prefix is for Redis'],
    [['list', '--cluster', 'redis://a:1,rediss://b:2'], 'not a mix'],
    [['list', '--url', 'redis://127.0.0.1:1', '--prefix', 'a{b'], 'invalid --prefix'],
    [['list', '--url', 'postgres://127.0.0.1:1/x', '--table', 'a-b'], 'invalid --table'],
    [['release', 'k', '--url', 'redis://x'], 'pass --force'],
    [['release', 'k', '--force', '--url', 'redis://x'], 'stdin is not a terminal'],
  ])('deadbolt %j', async (args, says) => {
    const { code, stdout, stderr } = await cli(args);
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr).toContain(says);
    expect(stderr).toMatch(/Run 'deadbolt (\w+ )?--help' for usage\.\n$/);
  });

  it('REDIS_URL and POSTGRES_URL both set: --url must choose', async () => {
    const result = await cli(['list'], {
      REDIS_URL: 'redis://127.0.0.1:1',
      POSTGRES_URL: 'postgres://127.0.0.1:1/x',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('REDIS_URL and POSTGRES_URL are both set');
  });
});

describe('backend errors exit with 2', () => {
  it('a Redis server that refuses the connection', async () => {
    const port = await freePort();
    const result = await cli(['list', '--url', `redis://:hunter2@127.0.0.1:${port}`]);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `deadbolt: cannot connect to redis://:***@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    });
  });

  it('a Redis Cluster none of whose seeds answers', async () => {
    const port = await freePort();
    const result = await cli(['inspect', 'k', '--cluster', `127.0.0.1:${port}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`deadbolt: cannot connect to redis://127.0.0.1:${port}`);
  });

  it('a PostgreSQL server that refuses the connection', async () => {
    const port = await freePort();
    const result = await cli(['list', '--url', `postgres://me:hunter2@127.0.0.1:${port}/db`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `deadbolt: cannot connect to postgres://me:***@127.0.0.1:${port}/db: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
  });

  it('a database without the table: the CLI says so and creates nothing', async () => {
    await using database = await startPostgres();
    const result = await cli(['list'], { POSTGRES_URL: database.url });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no table "deadbolt_locks" at');
    expect(result.stderr).toContain('check --table, --schema and the database');
    const pool = new pg.Pool({ connectionString: database.url });
    const { rows } = await pool.query("SELECT to_regclass('deadbolt_locks') AS found");
    await pool.end();
    expect(rows).toEqual([{ found: null }]);
  });
});

describe('the environment', () => {
  it('REDIS_URL names the server when --url does not; --prefix picks the namespace', async () => {
    await using server = await startRedis();
    const client = new Redis(server.url);
    const key = `job:${randomId()}`;
    const mine = new LockManager({ backend: new IoredisBackend(client), owner: 'default' });
    const theirs = new LockManager({
      backend: new IoredisBackend(client, { prefix: 'billing' }),
      owner: 'billing',
    });
    const locks = [await mine.acquire(key), await theirs.acquire(key)];
    try {
      const listed = async (...args: string[]) =>
        JSON.parse((await cli(['list', key, '--json', ...args], { REDIS_URL: server.url })).stdout);
      expect(await listed()).toMatchObject([{ key, holders: [{ owner: 'default' }] }]);
      expect(await listed('--prefix', 'billing')).toMatchObject([
        { key, holders: [{ owner: 'billing' }] },
      ]);
      expect(await listed('--prefix', 'nobody')).toEqual([]);
    } finally {
      for (const lock of locks) await lock.release();
      await client.quit();
    }
  });
});
