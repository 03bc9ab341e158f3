import { startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { lockKey, RedisBackend } from '../src/index.js';

it('falls back from SPUBLISH to PUBLISH on a server without sharded pub/sub', async () => {
  // A server that does not know SPUBLISH, as before Redis 7.
  await using server = await startRedis({ args: ['--rename-command', 'SPUBLISH', ''] });
  const client = new Redis(server.url);
  const subscriber = new Redis(server.url);
  try {
    const backend = new RedisBackend(
      {
        name: 'test',
        publishCommand: 'SPUBLISH',
        transport: {
          evalsha: (sha, keys, args) => client.evalsha(sha, keys.length, ...keys, ...args),
          eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
        },
        openSubscriber: () => Promise.reject(new Error('unused')),
      },
      { prefix: 'fallback', evictionCheck: 'off' },
    );
    const messages: string[] = [];
    subscriber.on('message', (_channel, message) => messages.push(message));
    await subscriber.subscribe(lockKey('fallback', 'k'));
    await backend.acquire({ key: 'k', token: 't', ttlMs: 10_000, limit: 1, weight: 1 });
    expect(await backend.release({ key: 'k', token: 't' })).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(messages).toEqual(['released']);
  } finally {
    client.disconnect();
    subscriber.disconnect();
  }
});
