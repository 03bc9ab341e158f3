import { format, inspect } from 'node:util';
import { LockLostError, MAX_KEY_BYTES } from '@deadbolt/core';
import { expect, it } from 'vitest';
import { type ConformanceContext, expectGranted, request } from './context.js';

/**
 * Keys that would change what a script does if a backend ever spliced them into code or into a
 * Redis name instead of passing them as data: Lua string and comment delimiters, quotes, line
 * breaks, Cluster hash-tag braces, the key schema's own separators and glob characters.
 */
const trickyKeys: [what: string, key: string][] = [
  ['a Lua long-string close', "]]; redis.call('FLUSHALL') --"],
  ['a Lua long-string open', "[[ redis.call('DEL', KEYS[1]) ]]"],
  ['a Lua level-1 long bracket', ']=]; return 1 --[=['],
  ['single quotes', "it's 'quoted'"],
  ['double quotes and a backslash', '"\\" .. os.exit() .. "'],
  ['a newline', 'line one\nredis.call("FLUSHALL")'],
  ['a carriage return and a tab', 'a\r\n\tb'],
  ['a NUL byte', 'before\u0000after'],
  ['braces', 'user:{42}:profile'],
  ['a closing brace first', '}x{'],
  ['empty braces', '{}'],
  ['percent-encoded braces', '%7B%7D'],
  ['the schema separator and a part name', 'x}:holders'],
  ['colons only', ':::'],
  ['glob characters', '*?[a-z]\\'],
  ['multi-byte text', 'clé-ünïcødé-鍵-🔒'],
];

/** A tricky key made unique by `id` (8 hex characters), with the tricky part at both ends. */
const keyOf = (tricky: string, id: string) => `${tricky}${id}${tricky}`;
/** 126 four-byte emoji and 8 ASCII characters: exactly {@link MAX_KEY_BYTES} UTF-8 bytes. */
const longestKeyOf = (id: string) => `${'🔒'.repeat((MAX_KEY_BYTES - 8) / 4)}${id}`;

export function securityTests(ctx: ConformanceContext): void {
  it.each([
    ...trickyKeys.map(([what, tricky]) => [what, (id: string) => keyOf(tricky, id)] as const),
    [`exactly ${MAX_KEY_BYTES} UTF-8 bytes`, longestKeyOf] as const,
  ])(
    'treats a key with %s as plain data: one lock, exclusive, and apart from look-alikes',
    async (_, keyFor) => {
      const key = keyFor(ctx.key().slice(-8));
      const [first, second] = ctx.managers(2);
      const lock = await first!.acquire(key);
      expect(lock.key).toBe(key);
      expect(await second!.tryAcquire(key)).toBeNull();
      // Keys that differ by one character, or that encode alike, are other locks.
      const lookalikes = [
        `${key}x`,
        `x${key}`,
        `${[...key].slice(0, -1).join('')}_`,
        key.replace(/[{}%]/g, '_'),
      ];
      for (const lookalike of lookalikes) {
        if (lookalike === key || Buffer.byteLength(lookalike) > MAX_KEY_BYTES) continue;
        const other = await second!.tryAcquire(lookalike);
        expect(other, `the look-alike ${JSON.stringify(lookalike)} is free`).not.toBeNull();
        await other?.release();
      }
      const info = await ctx.backend.inspection?.inspect({ key });
      if (info !== undefined) {
        expect(info?.key).toBe(key);
        expect(info?.holders.map((holder) => holder.token)).toEqual([lock.token]);
      }
      await lock.extend();
      expect(await lock.release()).toBe(true);
      const next = await second!.tryAcquire(key);
      expect(next?.fence).toBeGreaterThan(lock.fence);
      await next?.release();
    },
  );

  it('treats a token full of Lua and quotes as plain data', async () => {
    const key = ctx.key();
    const token = `"]]'); redis.call('FLUSHALL') --[[\n{x}`;
    expectGranted(await ctx.backend.acquire(request(key, token)));
    expect((await ctx.backend.acquire(request(key, 'second'))).ok).toBe(false);
    const info = await ctx.backend.inspection?.inspect({ key });
    if (info !== undefined) {
      expect(info?.holders.map((holder) => holder.token)).toEqual([token]);
    }
    expect(await ctx.backend.extend({ key, token, ttlMs: 30_000 })).toBe(true);
    expect(await ctx.backend.release({ key, token: token.slice(0, -1) })).toBe(false);
    expect(await ctx.backend.release({ key, token })).toBe(true);
    expectGranted(await ctx.backend.acquire(request(key, 'second')));
  });

  it('gives every lock a 32-hex-character token of its own', async () => {
    const [locks] = ctx.managers(1);
    const tokens = new Set<string>();
    for (let index = 0; index < 20; index++) {
      const lock = await locks!.acquire(ctx.key());
      expect(lock.token).toMatch(/^[0-9a-f]{32}$/);
      tokens.add(lock.token);
      await lock.release();
    }
    expect(tokens.size).toBe(20);
  });

  it('never prints a lock token: the Lock, what inspect returns and the errors a holder sees', async () => {
    const key = ctx.key();
    const [locks, thief] = ctx.managers(2);
    const lock = await locks!.acquire(key, { ttl: 30_000 });
    const printed: string[] = [
      inspect(lock, { depth: 10 }),
      format('%s %o %O %j', lock, lock, lock, lock),
      JSON.stringify({ lock }),
    ];
    const info = await ctx.backend.inspection?.inspect({ key });
    if (info !== undefined) {
      // The data holds the token for whoever asks for it; printing it does not show it.
      expect(info?.holders[0]?.token).toBe(lock.token);
      printed.push(inspect(info, { depth: 10 }), format('%o', info), JSON.stringify(info));
      expect(inspect(info, { depth: 10 })).toContain("token: '[redacted]'");
    }
    // Taken over behind its back: the holder's extend learns it lost the lease.
    await ctx.backend.release({ key, token: lock.token });
    const next = await thief!.acquire(key);
    const lost = await lock.extend().catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(LockLostError);
    const timedOut = await locks!.acquire(key, { wait: 0 }).catch((error: unknown) => error);
    for (const error of [lost, timedOut, lock.signal.reason]) {
      printed.push(String(error), (error as Error).stack ?? '', inspect(error, { depth: 10 }));
    }
    for (const text of printed) {
      expect(text).not.toContain(lock.token);
      expect(text).not.toContain(next.token);
    }
    expect(lock.token).toMatch(/^[0-9a-f]{32}$/);
    await next.release();
  });
}
