import { type Lock, LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomId, Terminal, waitFor } from './helpers.js';

// A person at a terminal: commands typed into bash in a tmux session, the screen read back.
describe('deadbolt on a terminal', { timeout: 120_000 }, () => {
  let server: RedisServer;
  let client: Redis;
  let backend: IoredisBackend;
  let terminal: Terminal;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await startRedis();
    client = new Redis(server.url);
    backend = new IoredisBackend(client);
  });
  afterAll(async () => {
    await backend?.close();
    await client?.quit();
    await server?.stop();
  });
  beforeEach(async () => {
    terminal = await Terminal.open({ REDIS_URL: server.url });
  });
  afterEach(async () => {
    await terminal?.close();
    for (const step of cleanup.splice(0)) await step().catch(() => undefined);
  });

  const hold = async (owner: string, key: string) => {
    const lock = await new LockManager({ backend, owner }).acquire(key, { ttl: 60_000 });
    cleanup.push(() => lock.release());
    return lock;
  };
  const queue = (owner: string, key: string): Promise<Lock> => {
    const leave = new AbortController();
    const waiting = new LockManager({ backend, owner }).acquire(key, {
      ttl: 60_000,
      wait: 120_000,
      signal: leave.signal,
    });
    cleanup.push(() => {
      leave.abort();
      return waiting.then((lock) => lock.release());
    });
    waiting.catch(() => undefined);
    return waiting;
  };

  it('watch redraws the holders when the key is released, and Ctrl-C ends it with 0', async () => {
    const key = `invoice:${randomId()}`;
    const lock = await hold('worker-1', key);
    // A refresh every 10 minutes: what changes the screen sooner came through the release channel.
    await terminal.type(`deadbolt watch ${key} --interval 600; echo "exit=$?"`);
    const held = await terminal.waitForScreen(/^worker-1 +1 +[\d.]+s$/m);
    expect(held).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d  watching ${key}: on release and every 600s, Ctrl-C stops$`,
        'm',
      ),
    );
    expect(held).toMatch(new RegExp(`^key +${key}\nfence +${lock.fence}\nqueued +0$`, 'm'));

    await lock.release();
    const freed = await terminal.waitForScreen(/^nobody holds it$/m);
    // Redrawn in place: the earlier view is gone from the screen.
    expect(freed).not.toContain('worker-1');

    await terminal.press('C-c');
    await terminal.waitForScreen(/exit=0$/m);
  });

  it('watch shows a new holder on its refresh, which nobody announces', async () => {
    const key = `invoice:${randomId()}`;
    await terminal.type(`deadbolt watch ${key} --interval 0.5; echo "exit=$?"`);
    await terminal.waitForScreen(/^nobody holds it$/m);
    await hold('worker-2', key);
    await terminal.waitForScreen(/^worker-2 +1 +[\d.]+s$/m);
    await terminal.press('C-c');
    await terminal.waitForScreen(/exit=0$/m);
  });

  it('release --force shows the holders, asks, and on y releases them: the waiter gets the lock', async () => {
    const key = `invoice:${randomId()}`;
    await hold('worker-1', key);
    const waiter = queue('worker-2', key);
    await waitFor('the waiter in the queue', async () => {
      return (await backend.inspection.inspect({ key }))?.queued === 1;
    });

    await terminal.type(`deadbolt release ${key} --force; echo "exit=$?"`);
    const asking = await terminal.waitForScreen(/Release 1 holder of invoice:\w+\? \[y\/N\]\s*$/m);
    expect(asking).toMatch(/^queued +1\n\nOWNER +WEIGHT +TTL LEFT\nworker-1 +1 +[\d.]+s$/m);
    expect(asking).toContain('without telling them');
    await terminal.type('y');
    const done = await terminal.waitForScreen(/exit=0$/m);
    expect(done).toContain(`released 1 holder of ${key}: worker-1 (weight 1)`);
    await waiter;
  });

  it.each([
    ['n and Enter', (t: Terminal) => t.type('n')],
    ['Enter alone', (t: Terminal) => t.type('')],
    ['Ctrl-C', (t: Terminal) => t.press('C-c')],
    ['Ctrl-D', (t: Terminal) => t.press('C-d')],
  ])('release --force answered with %s releases nothing and exits with 4', async (_, answer) => {
    const key = `invoice:${randomId()}`;
    const lock = await hold('worker-1', key);
    await terminal.type(`deadbolt release ${key} --force; echo "exit=$?"`);
    await terminal.waitForScreen(/\[y\/N\]\s*$/m);
    await answer(terminal);
    const screen = await terminal.waitForScreen(/exit=4$/m);
    expect(screen).toContain('deadbolt: not released');
    await expect(lock.extend()).resolves.toBeUndefined();
  });
});
