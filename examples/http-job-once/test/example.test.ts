import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));

/** Starts one process of the service on a free port; resolves once it listens. */
async function startService(redisUrl: string): Promise<{ url: string } & AsyncDisposable> {
  const child = spawn(process.execPath, ['dist/main.js'], {
    cwd: exampleDir,
    env: { ...process.env, REDIS_URL: redisUrl, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  };
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
    const url = /listening on (http:\S+)/.exec(line)?.[1];
    if (url) return { url, [Symbol.asyncDispose]: stop };
  }
  await stop();
  throw new Error('the service exited before it listened');
}

it('runs the job once for 20 concurrent requests spread over two processes', async () => {
  await using redisServer = await startRedis();
  // Declared after the server, so they stop before it does.
  await using first = await startService(redisServer.url);
  await using second = await startService(redisServer.url);

  const replies = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const response = await fetch(`${(i % 2 === 0 ? first : second).url}/jobs/export-7`, {
        method: 'POST',
      });
      expect(response.status).toBe(200);
      return (await response.json()) as { result: string; ranNow: boolean };
    }),
  );

  const redis = new Redis(redisServer.url);
  try {
    expect(await redis.lrange('example:job-runs:export-7', 0, -1)).toHaveLength(1);
  } finally {
    redis.disconnect();
  }
  expect(replies.filter((reply) => reply.ranNow)).toHaveLength(1);
  expect(new Set(replies.map((reply) => reply.result)).size).toBe(1);

  // Later requests find it done.
  const again = await fetch(`${second.url}/jobs/export-7`, { method: 'POST' });
  expect(await again.json()).toMatchObject({ ranNow: false, result: replies[0]?.result });
});
