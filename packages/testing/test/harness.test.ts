import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeReply, RespError } from '../src/harness/resp.js';
import {
  choosePostgresProvider,
  chooseRedisProvider,
  findRedisServerBinary,
  isDockerAvailable,
  LOCAL_POSTGRES_URL,
  type RedisServer,
  startPostgres,
  startRedis,
  startRedisServers,
} from '../src/index.js';

describe('chooseRedisProvider', () => {
  it.each([
    [
      { redisUrl: 'redis://10.0.0.5:6380', binary: '/usr/bin/redis-server', dockerAvailable: true },
      'external',
    ],
    [{ redisUrl: undefined, binary: '/usr/bin/redis-server', dockerAvailable: true }, 'binary'],
    [{ redisUrl: undefined, binary: '/usr/bin/redis-server', dockerAvailable: false }, 'binary'],
    [{ redisUrl: undefined, binary: undefined, dockerAvailable: true }, 'testcontainers'],
  ] as const)('picks %o → %s', (facts, provider) => {
    expect(chooseRedisProvider(facts)).toBe(provider);
  });

  it('says what to install when there is no Redis at all', () => {
    const choose = () =>
      chooseRedisProvider({ redisUrl: undefined, binary: undefined, dockerAvailable: false });
    expect(choose).toThrow(/install redis-server/);
    expect(choose).toThrow(/testcontainers/);
    expect(choose).toThrow(/REDIS_URL/);
  });

  it('finds redis-server only where PATH says', () => {
    expect(findRedisServerBinary('/nonexistent:/also/missing')).toBeUndefined();
    const found = findRedisServerBinary();
    if (found !== undefined) expect(existsSync(found)).toBe(true);
  });

  it('sees Docker through DOCKER_HOST', () => {
    expect(isDockerAvailable({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toBe(true);
  });
});

describe('choosePostgresProvider', () => {
  it.each([
    [
      { postgresUrl: 'postgres://app@10.0.0.5/app', localServer: true, dockerAvailable: true },
      'external',
    ],
    [{ postgresUrl: undefined, localServer: true, dockerAvailable: true }, 'local'],
    [{ postgresUrl: undefined, localServer: true, dockerAvailable: false }, 'local'],
    [{ postgresUrl: undefined, localServer: false, dockerAvailable: true }, 'testcontainers'],
  ] as const)('picks %o → %s', (facts, provider) => {
    expect(choosePostgresProvider(facts)).toBe(provider);
  });

  it('says what to install when there is no PostgreSQL at all', () => {
    const choose = () =>
      choosePostgresProvider({
        postgresUrl: undefined,
        localServer: false,
        dockerAvailable: false,
      });
    expect(choose).toThrow(/install and start postgresql/);
    expect(choose).toThrow(/testcontainers/);
    expect(choose).toThrow(/POSTGRES_URL/);
  });
});

describe('startPostgres', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  /** Runs `statement` on the database at `url` and resolves its rows. */
  async function query(url: string, statement: string, values: unknown[] = []) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(statement, values)).rows;
    } finally {
      await client.end();
    }
  }

  it('makes a throwaway database on the local server, which stop() drops', async () => {
    vi.stubEnv('POSTGRES_URL', '');
    const database = await startPostgres();
    expect(database.provider).toBe('local');
    expect(database.database).toMatch(/^deadbolt_test_[0-9a-f]{32}$/);
    expect(await query(database.url, 'SELECT current_database() AS name')).toEqual([
      { name: database.database },
    ]);
    // Left open, as a test that forgets to end its pool would: stop() still drops it.
    const forgotten = new pg.Client({ connectionString: database.url });
    forgotten.on('error', () => undefined);
    await forgotten.connect();
    await database.stop();
    const left = 'SELECT datname FROM pg_database WHERE datname = $1';
    expect(await query(LOCAL_POSTGRES_URL, left, [database.database])).toEqual([]);
    await database.stop();
  });

  it('lets a connection finish its work and close before dropping the database', async () => {
    vi.stubEnv('POSTGRES_URL', '');
    const database = await startPostgres();
    const pool = new pg.Pool({ connectionString: database.url });
    const client = await pool.connect();
    // Still running when the test ends, as an un-awaited call would be; pool.end() resolves once
    // the pool lets go of its connections, before they have closed.
    const running = client.query('SELECT pg_sleep(0.3) AS slept').finally(() => client.release());
    const ended = pool.end();
    await database.stop();
    expect((await running).rows).toEqual([{ slept: '' }]);
    await ended;
    const left = 'SELECT datname FROM pg_database WHERE datname = $1';
    expect(await query(LOCAL_POSTGRES_URL, left, [database.database])).toEqual([]);
  });

  it('uses POSTGRES_URL as it is, and leaves it be', async () => {
    vi.stubEnv('POSTGRES_URL', 'postgres://app@10.0.0.9:5433/orders');
    const database = await startPostgres();
    expect(database).toMatchObject({
      provider: 'external',
      url: 'postgres://app@10.0.0.9:5433/orders',
      database: 'orders',
    });
    await database[Symbol.asyncDispose]();
  });
});

describe('RESP decoding', () => {
  it('decodes every RESP2 type, nested', () => {
    const reply = Buffer.from('*5\r\n+OK\r\n:-3\r\n$-1\r\n*2\r\n$3\r\nabc\r\n-ERR no\r\n*0\r\n');
    const decoded = decodeReply(reply);
    expect(decoded?.end).toBe(reply.length);
    const [ok, integer, nil, nested, empty] = (decoded?.value ?? []) as unknown[];
    expect([ok, integer, nil, empty]).toEqual(['OK', -3, null, []]);
    expect((nested as unknown[])[0]).toBe('abc');
    expect((nested as unknown[])[1]).toBeInstanceOf(RespError);
  });

  it('waits for the whole reply, counting bulk lengths in bytes', () => {
    const reply = Buffer.from('*2\r\n$4\r\n🔒\r\n:1\r\n');
    for (let cut = 0; cut < reply.length; cut++) {
      expect(decodeReply(reply.subarray(0, cut))).toBeUndefined();
    }
    expect(decodeReply(reply)?.value).toEqual(['🔒', 1]);
  });
});

/** Whether something answers PING on `port` within 300 ms. */
const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(300, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
    socket.once('data', () => {
      socket.destroy();
      resolve(true);
    });
    socket.write('*1\r\n$4\r\nPING\r\n');
  });

/** Whether this process can bind `port` on 127.0.0.1 (nothing else holds it). */
const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

describe('startRedis on a local redis-server', () => {
  // These tests are about the servers the harness starts, whatever the environment points at.
  beforeEach(() => {
    vi.stubEnv('REDIS_URL', '');
    vi.stubEnv('REDIS_URLS', '');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('starts a private, empty server on a free port that is not 6379', async () => {
    const server = await startRedis();
    try {
      expect(server.provider).toBe('binary');
      expect(server.port).not.toBe(6379);
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(await server.command('DBSIZE')).toBe(':0\r\n');
      expect(await server.call('CONFIG', 'GET', 'save')).toEqual(['save', '']);
      expect(await server.call('CONFIG', 'GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await server.call('CONFIG', 'GET', 'dir')).toEqual(['dir', server.dir]);
      await expect(server.command('NOSUCHCOMMAND')).rejects.toThrow(/unknown command/);
    } finally {
      await server.stop();
    }
  });

  it('pauses, resumes, kills and restarts the server on the same port, empty', async () => {
    const server = await startRedis();
    try {
      expect(await server.command('SET', 'k', 'v')).toBe('+OK\r\n');
      await server.pause();
      expect(await answers(server.port)).toBe(false);
      await server.resume();
      expect(await answers(server.port)).toBe(true);
      expect(await server.call('GET', 'k')).toBe('v');
      await server.kill();
      expect(await answers(server.port)).toBe(false);
      await server.restart();
      expect(await server.call('EXISTS', 'k')).toBe(0);
      // A restart also works on a running server, and on a paused one.
      await server.command('SET', 'k', 'v');
      await server.pause();
      await server.restart();
      expect(await server.call('EXISTS', 'k')).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('stop removes the temporary directory and frees the port; a stopped server stays stopped', async () => {
    const server = await startRedis();
    const dir = server.dir as string;
    expect(existsSync(dir)).toBe(true);
    expect(await bindable(server.port)).toBe(false);
    await server.stop();
    expect(existsSync(dir)).toBe(false);
    expect(await answers(server.port)).toBe(false);
    expect(await bindable(server.port)).toBe(true);
    await expect(server.restart()).rejects.toThrow(/stopped/);
    await server.stop();
  });

  it('stops through Symbol.asyncDispose', async () => {
    const server: RedisServer = await startRedis();
    await server[Symbol.asyncDispose]();
    expect(existsSync(server.dir as string)).toBe(false);
    expect(await answers(server.port)).toBe(false);
  });

  it('starts independent servers on distinct ports', async () => {
    const servers = await startRedisServers(3);
    try {
      expect(new Set(servers.map((server) => server.port)).size).toBe(3);
      expect(new Set(servers.map((server) => server.dir)).size).toBe(3);
      const [first, second, third] = servers as [RedisServer, RedisServer, RedisServer];
      await first.command('SET', 'only-here', '1');
      expect(await second.call('EXISTS', 'only-here')).toBe(0);
      await first.kill();
      expect(await answers(second.port)).toBe(true);
      expect(await answers(third.port)).toBe(true);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  it('passes extra arguments to redis-server', async () => {
    const server = await startRedis({
      args: ['--maxmemory-policy', 'noeviction', '--databases', '3'],
    });
    try {
      expect(await server.call('CONFIG', 'GET', 'databases')).toEqual(['databases', '3']);
    } finally {
      await server.stop();
    }
  });
});

describe('startRedis on an existing server', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('uses REDIS_URL and refuses faults and arguments', async () => {
    vi.stubEnv('REDIS_URL', 'redis://127.0.0.1:1');
    const external = await startRedis();
    expect(external.provider).toBe('external');
    expect(external.port).toBe(1);
    expect(external.dir).toBeUndefined();
    for (const fault of [external.kill, external.pause, external.resume, external.restart]) {
      await expect(fault()).rejects.toThrow(/not started by the harness/);
    }
    await external.stop();
    await expect(startRedis({ args: ['--databases', '3'] })).rejects.toThrow(/existing server/);
  });

  it('talks to it with the credentials and database of the URL', async () => {
    vi.stubEnv('REDIS_URL', '');
    const real = await startRedis({ args: ['--requirepass', 's3cret'] });
    try {
      const external = await startRedis({ url: `redis://:s3cret@127.0.0.1:${real.port}/2` });
      await external.command('SET', 'in-db-2', '1');
      expect(await real.command('PING').catch((error: Error) => error.message)).toMatch(/NOAUTH/);
      const wrong = await startRedis({ url: `redis://:wrong@127.0.0.1:${real.port}` });
      await expect(wrong.command('PING')).rejects.toThrow(/WRONGPASS|invalid password/);
      const db0 = await startRedis({ url: `redis://:s3cret@127.0.0.1:${real.port}` });
      expect(await db0.call('EXISTS', 'in-db-2')).toBe(0);
      expect(await external.call('EXISTS', 'in-db-2')).toBe(1);
    } finally {
      await real.stop();
    }
  });

  it('needs REDIS_URLS, not REDIS_URL, for several servers', async () => {
    vi.stubEnv('REDIS_URLS', '');
    vi.stubEnv('REDIS_URL', 'redis://127.0.0.1:1');
    await expect(startRedisServers(3)).rejects.toThrow(/REDIS_URLS/);
    vi.stubEnv('REDIS_URLS', 'redis://127.0.0.1:1, redis://127.0.0.1:2');
    await expect(startRedisServers(3)).rejects.toThrow(/2 distinct servers; 3 needed/);
    const servers = await startRedisServers(2);
    expect(servers.map((server) => [server.provider, server.port])).toEqual([
      ['external', 1],
      ['external', 2],
    ]);
  });
});

describe('cleanup when the test process ends', () => {
  let dir: string;

  beforeEach(() => {
    // The harness as plain JavaScript, so a bare `node` child process can load it.
    dir = mkdtempSync(join(tmpdir(), 'deadbolt-harness-test-'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    for (const name of ['processes', 'resp']) {
      const source = readFileSync(new URL(`../src/harness/${name}.ts`, import.meta.url), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      writeFileSync(join(dir, `${name}.js`), outputText);
    }
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `ending` in a child process after it started a server; resolves the server's port and dir. */
  async function startAndEnd(ending: string): Promise<{ port: number; dir: string }> {
    const script = [
      `import { RedisProcess } from ${JSON.stringify(join(dir, 'processes.js'))};`,
      `const server = await RedisProcess.start(${JSON.stringify(findRedisServerBinary())});`,
      'console.log(JSON.stringify({ port: server.port, dir: server.dir }));',
      ending,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('\n') && ending.includes('SIGTERM')) child.kill('SIGTERM');
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
    );
    expect(code === 0 || signal === 'SIGTERM').toBe(true);
    return JSON.parse(output) as { port: number; dir: string };
  }

  it.each([
    ['ends on its own', '// nothing keeps the event loop alive'],
    ['calls process.exit', 'process.exit(0);'],
    ['gets SIGTERM', 'setInterval(() => undefined, 1000); // wait for SIGTERM'],
  ])('kills its servers and removes their directories when it %s', async (_, ending) => {
    const server = await startAndEnd(ending);
    expect(await answers(server.port)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });
});
