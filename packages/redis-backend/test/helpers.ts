import { randomUUID } from 'node:crypto';
import type { AcquireRequest } from '@deadbolt/core';
import type { Redis } from 'ioredis';
import {
  ioredisConnection,
  type OwnedSubscriber,
  RedisBackend,
  type ScriptTransport,
} from '../src/index.js';

/** A ScriptTransport over an ioredis client, as `@deadbolt/ioredis` builds it. */
export function transportOf(redis: Redis): ScriptTransport {
  return ioredisConnection(redis).transport;
}

/** A transport that counts the calls it passes on to `inner`. */
export function countingTransport(inner: ScriptTransport): ScriptTransport & {
  calls: { evalsha: number; eval: number };
} {
  const calls = { evalsha: 0, eval: 0 };
  return {
    calls,
    evalsha: (sha, keys, args) => {
      calls.evalsha++;
      return inner.evalsha(sha, keys, args);
    },
    eval: (source, keys, args) => {
      calls.eval++;
      return inner.eval(source, keys, args);
    },
  };
}

/** A subscriber on a duplicate of `redis`, as `@deadbolt/ioredis` opens it. */
export function subscriberOf(redis: Redis): Promise<OwnedSubscriber> {
  return ioredisConnection(redis).openSubscriber(() => undefined);
}

/**
 * A backend over `redis` (scripts only; waiting opens a duplicate connection), without the
 * eviction check: it has tests of its own, and here it would add a script to every count.
 */
export function backendOf(
  redis: Redis,
  prefix = 'scripts',
  transport: ScriptTransport = transportOf(redis),
): RedisBackend {
  return new RedisBackend(
    { name: 'test', transport, openSubscriber: () => subscriberOf(redis) },
    { prefix, evictionCheck: 'off' },
  );
}

/** A key no other test uses. */
export const unique = (name: string) => `${name}:${randomUUID()}`;

/** A mutex request. */
export const mutex = (key: string, token: string, ttlMs = 10_000): AcquireRequest => ({
  key,
  token,
  ttlMs,
  limit: 1,
  weight: 1,
});

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds, for state that settles asynchronously (pub/sub). */
export async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** The server's clock in milliseconds, read as the scripts read it. */
export async function serverMs(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
