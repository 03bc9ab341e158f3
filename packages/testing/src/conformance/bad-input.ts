import { expect, it } from 'vitest';
import type { ConformanceContext } from './context.js';

const good = { key: 'conformance:bad-input', token: 'token', ttlMs: 1_000, limit: 1, weight: 1 };

/** Requests a backend must refuse with InvalidArgumentError, and the argument it must name. */
const badAcquires: [string, unknown, string][] = [
  ['no request', undefined, 'request'],
  ['an empty key', { ...good, key: '' }, 'request.key'],
  ['a non-string key', { ...good, key: 42 }, 'request.key'],
  ['a key over 512 bytes', { ...good, key: 'é'.repeat(257) }, 'request.key'],
  ['an empty token', { ...good, token: '' }, 'request.token'],
  ['a zero ttl', { ...good, ttlMs: 0 }, 'request.ttlMs'],
  ['a NaN ttl', { ...good, ttlMs: Number.NaN }, 'request.ttlMs'],
  ['an infinite ttl', { ...good, ttlMs: Number.POSITIVE_INFINITY }, 'request.ttlMs'],
  ['a limit of 0', { ...good, limit: 0 }, 'request.limit'],
  ['a fractional limit', { ...good, limit: 1.5 }, 'request.limit'],
  ['a weight of 0', { ...good, weight: 0 }, 'request.weight'],
  ['a weight over the limit', { ...good, limit: 2, weight: 3 }, 'request.weight'],
  ['a negative queue ttl', { ...good, queueTtlMs: -1 }, 'request.queueTtlMs'],
];

export function badInputTests(ctx: ConformanceContext): void {
  it.each(badAcquires)('acquire refuses %s', async (_, request, argument) => {
    await expect(ctx.backend.acquire(request as never)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      argument,
    });
  });

  it.each([
    [
      'extend with a zero ttl',
      () => ctx.backend.extend({ key: 'k', token: 't', ttlMs: 0 }),
      'request.ttlMs',
    ],
    [
      'extend with an empty key',
      () => ctx.backend.extend({ key: '', token: 't', ttlMs: 1 }),
      'request.key',
    ],
    ['release without a token', () => ctx.backend.release({ key: 'k' } as never), 'request.token'],
    [
      'release with a non-string key',
      () => ctx.backend.release({ key: null, token: 't' } as never),
      'request.key',
    ],
  ])('refuses %s', async (_, call, argument) => {
    await expect(call()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument });
  });

  it('leaves nothing behind after refusing a request', async ({ skip }) => {
    if (!ctx.backend.inspect) return skip('the backend has no inspect');
    const key = ctx.key();
    await expect(ctx.backend.acquire({ ...good, key, weight: 2 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await ctx.backend.inspect(key)).toBeNull();
  });
}
