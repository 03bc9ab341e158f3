import type { LockBackend } from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  type ConformanceContext,
  expectGranted,
  queued,
  request,
  sleep,
  withFeature,
  withShortLease,
} from './context.js';

type ListingBackend = LockBackend & Required<Pick<LockBackend, 'listing'>>;

/** Every key `match` finds, following the cursor to the end, pages of `count`. */
async function listAll(backend: ListingBackend, match: string, count?: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await backend.listing.list({
      match,
      ...(cursor ? { cursor } : {}),
      ...(count === undefined ? {} : { count }),
    });
    keys.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== null);
  return [...new Set(keys)].sort();
}

export function listingTests(ctx: ConformanceContext): void {
  it('lists the keys with a holder, page by page, and only those that match', async () => {
    const backend = withFeature<ListingBackend>(ctx, 'listing');
    const prefix = ctx.key();
    const held = Array.from({ length: 25 }, (_, index) => `${prefix}:job:${index}`);
    for (const key of held) expectGranted(await backend.acquire(request(key, 't')));
    expectGranted(await backend.acquire(request(`${prefix}:other`, 't')));
    const escaped = prefix.replace(/[*?\\]/g, '\\$&');
    expect(await listAll(backend, `${escaped}:job:*`, 7)).toEqual([...held].sort());
    expect(await listAll(backend, `${escaped}:job:?`)).toEqual(
      held.filter((key) => key.length === `${prefix}:job:0`.length).sort(),
    );
  });

  it('leaves out keys nobody holds any more: released, or expired', async () => {
    const backend = withFeature<ListingBackend>(ctx, 'listing');
    const prefix = ctx.key();
    expectGranted(await backend.acquire(request(`${prefix}:released`, 't')));
    await backend.release({ key: `${prefix}:released`, token: 't' });
    expectGranted(await backend.acquire(request(`${prefix}:expired`, 't', { ttlMs: 50 })));
    expectGranted(await backend.acquire(request(`${prefix}:held`, 't')));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await listAll(backend, `${prefix}:*`)).toEqual([`${prefix}:held`]);
  });

  it('matches keys literally: quotes, braces, glob characters escaped with a backslash', async () => {
    const backend = withFeature<ListingBackend>(ctx, 'listing');
    const prefix = ctx.key();
    const odd = `${prefix}:{a}*?[b]"'\\`;
    expectGranted(await backend.acquire(request(odd, 't')));
    expectGranted(await backend.acquire(request(`${prefix}:{a}xx[b]"'\\`, 't')));
    const literal = odd.replace(/[*?\\]/g, '\\$&');
    expect(await listAll(backend, literal)).toEqual([odd]);
  });

  if (!ctx.has('queue')) return;
  it('lists a key that only has waiters', async () => {
    const backend = withFeature<ListingBackend>(ctx, 'listing');
    const { key, ttlMs } = await withShortLease(ctx, [50, 400, 3_200], async (key, ttlMs) => {
      expectGranted(await backend.acquire(request(key, 'holder', { ttlMs })));
      return (await backend.queue?.acquire(queued(key, 'waiter')))?.ok === false;
    });
    // The holder's lease runs out; the waiter's place is still there.
    await sleep(ttlMs * 2);
    expect(await listAll(backend, key)).toEqual([key]);
  });
}
