import { ClusterBackend } from '@deadbolt/cluster';
import { type Lock, LockLostError, LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { PostgresBackend } from '@deadbolt/postgres';
import { startPostgres, startRedis, startRedisCluster } from '@deadbolt/testing';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { LockJson, ReleaseJson, WatchJson } from '../src/index.js';
import { CliProcess, cli, cliJson, cliOk, randomId, type Topology, waitFor } from './helpers.js';

/** Each backend the CLI opens, on a server of its own, with a namespace of its own. */
const topologies: [string, () => Promise<Topology & { stop(): Promise<void> }>][] = [
  [
    'a Redis server (--url)',
    async () => {
      const server = await startRedis();
      const client = new Redis(server.url);
      const prefix = `cli-${randomId()}`;
      const backend = new IoredisBackend(client, { prefix });
      return {
        args: ['--url', server.url, '--prefix', prefix],
        backend,
        stop: async () => {
          await backend.close();
          await client.quit();
          await server.stop();
        },
      };
    },
  ],
  [
    'a Redis Cluster (--cluster)',
    async () => {
      const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
      const client = new Cluster([...cluster.rootNodes]);
      const prefix = `cli-${randomId()}`;
      const backend = new ClusterBackend(client, { prefix });
      const seeds = cluster.rootNodes.map(({ host, port }) => `${host}:${port}`);
      return {
        args: ['--cluster', seeds.join(','), '--prefix', prefix],
        backend,
        stop: async () => {
          await backend.close();
          await client.quit();
          await cluster.stop();
        },
      };
    },
  ],
  [
    'PostgreSQL (--url postgres://)',
    async () => {
      const database = await startPostgres();
      const pool = new pg.Pool({ connectionString: database.url });
      const table = `cli_${randomId()}`;
      const backend = new PostgresBackend(pool, { table });
      // The CLI looks for the table and never creates it: the application has made it.
      await backend.migrate();
      return {
        args: ['--url', database.url, '--table', table],
        backend,
        stop: async () => {
          await backend.close();
          await pool.end();
          await database.stop();
        },
      };
    },
  ],
];

describe.each(topologies)('deadbolt on %s', { timeout: 120_000 }, (_name, start) => {
  let topology: Topology & { stop(): Promise<void> };
  beforeAll(async () => {
    topology = await start();
  }, 180_000);
  afterAll(async () => {
    await topology?.stop();
  });

  const deadbolt = (...args: string[]) => [...args, ...topology.args];
  const manager = (owner: string) => new LockManager({ backend: topology.backend, owner });

  /** Holds `key` as `owner`, released when the test ends unless the test released it. */
  async function hold(
    owner: string,
    key: string,
    options: { limit?: number; weight?: number } = {},
  ) {
    const { limit = 1, weight = 1 } = options;
    const lock =
      limit === 1
        ? await manager(owner).acquire(key, { ttl: 60_000 })
        : await manager(owner).semaphore(key, { limit }).acquire({ ttl: 60_000, weight });
    onTestFinished(() => lock.release().then(() => undefined));
    return lock;
  }

  /** Queues `owner` on `key`; resolves its lock once it gets one. Gives up when the test ends. */
  function queue(owner: string, key: string): Promise<Lock> {
    const leave = new AbortController();
    const waiting = manager(owner).acquire(key, {
      ttl: 60_000,
      wait: 120_000,
      signal: leave.signal,
    });
    onTestFinished(async () => {
      leave.abort();
      await waiting.then((lock) => lock.release()).catch(() => undefined);
    });
    return waiting;
  }

  async function waitForQueue(key: string, queued: number) {
    await waitFor(`${queued} waiting on ${key}`, async () => {
      return (await topology.backend.inspection?.inspect({ key }))?.queued === queued;
    });
  }

  it('list: a row per locked key that matches, with holders, owners, permits, TTL, fence and queue', async () => {
    const id = randomId();
    const invoice = await hold('worker-1', `${id}:invoice`);
    queue('worker-2', `${id}:invoice`);
    queue('worker-3', `${id}:invoice`);
    await hold('alice', `${id}:pool`, { limit: 3, weight: 1 });
    const pool = await hold('bob', `${id}:pool`, { limit: 3, weight: 2 });
    // Escape sequences and line breaks in a key are data: shown escaped, never sent to the terminal.
    const odd = await hold('worker-1', `${id}:odd\x1b[2J\n`);
    await hold('worker-1', `other-${id}`);
    await waitForQueue(`${id}:invoice`, 2);

    const table = await cliOk(deadbolt('list', `${id}:*`));
    expect(table.split('\n')[0]).toMatch(/^KEY +HOLDERS +OWNERS +WEIGHT +TTL LEFT +FENCE +QUEUED$/);
    expect(table).toMatch(
      new RegExp(`^${id}:invoice +1 +worker-1 +1 +[\\d.]+s +${invoice.fence} +2$`, 'm'),
    );
    expect(table).toMatch(
      new RegExp(`^${id}:odd\\\\x1b\\[2J\\\\x0a +1 +worker-1 +1 +[\\d.]+s +${odd.fence} +0$`, 'm'),
    );
    expect(table).toMatch(
      new RegExp(`^${id}:pool +2 +alice,bob +3 +[\\d.]+s(-[\\d.]+s)? +${pool.fence} +0$`, 'm'),
    );
    expect(table).not.toContain('other-');
    expect(table).not.toContain('\x1b');
    expect(table.trimEnd().split('\n')).toHaveLength(4);

    const locks = await cliJson<LockJson[]>(deadbolt('list', `${id}:*`));
    const holder = (owner: string, weight = 1) => ({ owner, weight, ttlMs: expect.any(Number) });
    expect(locks).toEqual([
      { key: `${id}:invoice`, holders: [holder('worker-1')], fence: invoice.fence, queued: 2 },
      { key: `${id}:odd\x1b[2J\n`, holders: [holder('worker-1')], fence: odd.fence, queued: 0 },
      {
        key: `${id}:pool`,
        holders: expect.arrayContaining([holder('alice'), holder('bob', 2)]),
        fence: pool.fence,
        queued: 0,
      },
    ]);
    for (const lock of locks) {
      for (const { ttlMs } of lock.holders) expect(ttlMs).toBeGreaterThan(0);
    }
    expect(JSON.stringify(locks)).not.toContain(invoice.token);
  });

  it('list: a pattern that matches nothing prints a line for people and [] for scripts', async () => {
    const id = randomId();
    await hold('worker-1', `${id}:elsewhere`);
    expect(await cliOk(deadbolt('list', `${id}:invoice:*`))).toBe(
      `no locked keys match ${id}:invoice:*\n`,
    );
    expect(await cliJson(deadbolt('list', `${id}:invoice:*`))).toEqual([]);
  });

  it("inspect: a key's fence, queue and holders; exit code 3 for a key nobody holds", async () => {
    const id = randomId();
    const lock = await hold('worker-1', `${id}:invoice`);
    queue('worker-2', `${id}:invoice`);
    await waitForQueue(`${id}:invoice`, 1);

    const view = await cliOk(deadbolt('inspect', `${id}:invoice`));
    expect(view).toMatch(
      new RegExp(
        `^key +${id}:invoice\nfence +${lock.fence}\nqueued +1\n\nOWNER +WEIGHT +TTL LEFT\nworker-1 +1 +[\\d.]+s\n$`,
      ),
    );
    expect(await cliJson(deadbolt('inspect', `${id}:invoice`))).toEqual({
      key: `${id}:invoice`,
      holders: [{ owner: 'worker-1', weight: 1, ttlMs: expect.any(Number) }],
      fence: lock.fence,
      queued: 1,
    });

    expect(await cli(deadbolt('inspect', `${id}:free`))).toEqual({
      code: 3,
      stdout: '',
      stderr: `deadbolt: nobody holds ${id}:free\n`,
    });
    expect(await cli(deadbolt('inspect', `${id}:free`, '--json'))).toEqual({
      code: 3,
      stdout: 'null\n',
      stderr: '',
    });
  });

  it('release --force --yes: every holder is released and told so by its next extension', async () => {
    const id = randomId();
    const alice = await hold('alice', `${id}:pool`, { limit: 3, weight: 1 });
    const bob = await hold('bob', `${id}:pool`, { limit: 3, weight: 2 });

    const result = await cliJson<ReleaseJson>(
      deadbolt('release', `${id}:pool`, '--force', '--yes'),
    );
    expect(result).toEqual({
      key: `${id}:pool`,
      released: expect.arrayContaining([
        { owner: 'alice', weight: 1, ttlMs: expect.any(Number) },
        { owner: 'bob', weight: 2, ttlMs: expect.any(Number) },
      ]),
      ended: [],
    });
    expect(result.released).toHaveLength(2);
    await expect(alice.extend()).rejects.toThrow(LockLostError);
    await expect(bob.extend()).rejects.toThrow(LockLostError);

    expect(await cli(deadbolt('release', `${id}:pool`, '--force', '--yes'))).toEqual({
      code: 3,
      stdout: '',
      stderr: `deadbolt: nobody holds ${id}:pool: nothing to release\n`,
    });
    expect(await cli(deadbolt('release', `${id}:pool`, '--force', '--yes', '--json'))).toEqual({
      code: 3,
      stdout: `${JSON.stringify({ key: `${id}:pool`, released: [], ended: [] })}\n`,
      stderr: '',
    });
  });

  it('release --force --yes: the first waiter in the queue gets the lock', async () => {
    const id = randomId();
    const holder = await hold('worker-1', `${id}:invoice`);
    const waiter = queue('worker-2', `${id}:invoice`);
    await waitForQueue(`${id}:invoice`, 1);

    expect(await cliOk(deadbolt('release', `${id}:invoice`, '--force', '--yes'))).toBe(
      `released 1 holder of ${id}:invoice: worker-1 (weight 1)\n`,
    );
    const handedOver = await waiter;
    expect(handedOver.fence).toBeGreaterThan(holder.fence);
    expect(await cliJson(deadbolt('inspect', `${id}:invoice`))).toMatchObject({
      holders: [{ owner: 'worker-2' }],
      fence: handedOver.fence,
    });
  });

  it('watch --json: a line when watching starts and again when the key is released', async () => {
    const id = randomId();
    const lock = await hold('worker-1', `${id}:invoice`);
    // A refresh every 10 minutes: the release can only come through the backend's wake-up.
    const watching = new CliProcess(
      deadbolt('watch', `${id}:invoice`, '--interval', '600', '--json'),
    );
    onTestFinished(() => watching.stop('SIGKILL').then(() => undefined));
    const views = () => watching.lines.map((line) => JSON.parse(line) as WatchJson);

    await waitFor('the first view', () => views().length > 0);
    expect(views()[0]).toEqual({
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      key: `${id}:invoice`,
      lock: {
        key: `${id}:invoice`,
        holders: [{ owner: 'worker-1', weight: 1, ttlMs: expect.any(Number) }],
        fence: lock.fence,
        queued: 0,
      },
    });
    await lock.release();
    await waitFor('a view without holder', () => views().some((view) => view.lock === null));
    expect(await watching.stop('SIGINT')).toBe(0);
    expect(watching.stderr).toBe('');
  });
});
