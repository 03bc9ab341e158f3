import { type ChildProcess, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startRedis } from '@deadbolt/testing';
import { expect, it } from 'vitest';
import type { LockJson } from '../src/index.js';
import { cliJson, cliOk, randomId, waitFor } from './helpers.js';

const HOLD = fileURLToPath(new URL('./fixtures/hold.mjs', import.meta.url));

/** A worker process that takes `key` (or queues for it) and says `holding <fence>` once it has it. */
function worker(url: string, key: string): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [HOLD, url, key], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  return Object.assign(child, { output: () => output });
}

it('shows a key held by one process and waited for by two others, owners as host:pid', {
  timeout: 120_000,
}, async () => {
  await using server = await startRedis();
  const key = `invoice:${randomId()}`;
  const args = ['--url', server.url];
  const holder = worker(server.url, key);
  const workers = [holder];
  try {
    const fence = Number(
      (await waitFor('the first worker to hold', () => /holding (\d+)/.exec(holder.output())))[1],
    );
    workers.push(worker(server.url, key), worker(server.url, key));
    const lock = await waitFor('two workers in the queue', async () => {
      const [found] = await cliJson<LockJson[]>(['list', key, ...args]);
      return found?.queued === 2 && found;
    });
    const owner = `${hostname()}:${holder.pid}`;
    expect(lock).toEqual({
      key,
      holders: [{ owner, weight: 1, ttlMs: expect.any(Number) }],
      fence,
      queued: 2,
    });
    expect(await cliOk(['list', key, ...args])).toMatch(
      new RegExp(`^${key} +1 +${owner} +1 +[\\d.]+s +${fence} +2$`, 'm'),
    );
    expect(await cliOk(['inspect', key, ...args])).toMatch(
      new RegExp(`^queued +2\n\nOWNER +WEIGHT +TTL LEFT\n${owner} +1 +[\\d.]+s\n$`, 'm'),
    );
  } finally {
    // Each lets go and exits before the server stops.
    await Promise.all(
      workers.map(async (child) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }),
    );
  }
});
