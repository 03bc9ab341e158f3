import {
  type AcquireRequest,
  type FenceCapability,
  type HandoffCapability,
  type InspectionCapability,
  InvalidArgumentError,
  type ListingCapability,
  type LockBackend,
  type QueueCapability,
  type QueuedAcquireRequest,
  type WakeUpCapability,
} from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  type BackendFeature,
  type ConformanceContext,
  expectGranted,
  queued,
  rejectionOf,
  request,
} from './context.js';

/** A call with a bad argument, and the name of the argument its error must end with. */
type BadCall = [
  what: string,
  call: (backend: LockBackend, key: string) => Promise<unknown>,
  argument: string,
];

/** Hands a deliberately ill-typed request to the backend, as untyped callers can. */
const loose = <T>(value: unknown): T => value as T;

function badAcquire(what: string, fields: Record<string, unknown>, argument: string): BadCall {
  return [
    `acquire with ${what}`,
    (backend, key) => backend.acquire(loose<AcquireRequest>({ ...request(key, 't'), ...fields })),
    argument,
  ];
}

const badCalls: BadCall[] = [
  ['acquire without a request', (backend) => backend.acquire(loose(undefined)), 'request'],
  ['acquire with null', (backend) => backend.acquire(loose(null)), 'request'],
  badAcquire('an empty key', { key: '' }, 'key'),
  badAcquire('a number as key', { key: 42 }, 'key'),
  badAcquire('a key over 512 bytes', { key: 'é'.repeat(257) }, 'key'),
  badAcquire('an empty token', { token: '' }, 'token'),
  badAcquire('a number as token', { token: 42 }, 'token'),
  badAcquire('no token', { token: undefined }, 'token'),
  badAcquire('a ttl of 0', { ttlMs: 0 }, 'ttlMs'),
  badAcquire('a ttl below 1 ms', { ttlMs: 0.5 }, 'ttlMs'),
  badAcquire('a negative ttl', { ttlMs: -1 }, 'ttlMs'),
  badAcquire('a NaN ttl', { ttlMs: Number.NaN }, 'ttlMs'),
  badAcquire('an infinite ttl', { ttlMs: Number.POSITIVE_INFINITY }, 'ttlMs'),
  badAcquire('a string as ttl', { ttlMs: '1000' }, 'ttlMs'),
  badAcquire('a limit of 0', { limit: 0 }, 'limit'),
  badAcquire('a fractional limit', { limit: 1.5 }, 'limit'),
  badAcquire('a NaN limit', { limit: Number.NaN }, 'limit'),
  badAcquire('a weight of 0', { weight: 0 }, 'weight'),
  badAcquire('a fractional weight', { limit: 3, weight: 1.5 }, 'weight'),
  badAcquire('a weight over the limit', { limit: 5, weight: 6 }, 'weight'),
  ['extend without a request', (backend) => backend.extend(loose(undefined)), 'request'],
  ['extend with an empty key', (b) => b.extend({ key: '', token: 't', ttlMs: 1_000 }), 'key'],
  [
    'extend with a number as token',
    (b, key) => b.extend(loose({ key, token: 7, ttlMs: 1 })),
    'token',
  ],
  ['extend with a ttl of 0', (b, key) => b.extend({ key, token: 't', ttlMs: 0 }), 'ttlMs'],
  ['extend with a ttl below 1 ms', (b, key) => b.extend({ key, token: 't', ttlMs: 0.5 }), 'ttlMs'],
  ['extend with a NaN ttl', (b, key) => b.extend({ key, token: 't', ttlMs: Number.NaN }), 'ttlMs'],
  [
    'extend with an infinite ttl',
    (b, key) => b.extend({ key, token: 't', ttlMs: Number.POSITIVE_INFINITY }),
    'ttlMs',
  ],
  ['release without a request', (backend) => backend.release(loose(undefined)), 'request'],
  ['release with an empty key', (b) => b.release({ key: '', token: 't' }), 'key'],
  ['release with null as key', (b) => b.release(loose({ key: null, token: 't' })), 'key'],
  ['release without a token', (b, key) => b.release(loose({ key })), 'token'],
  ['release with a number as token', (b, key) => b.release(loose({ key, token: 1 })), 'token'],
];

const signal = new AbortController().signal;

/** A queued request with `fields` changed, to the queue capability. */
function badQueued(what: string, fields: Record<string, unknown>, argument: string): BadCall {
  return [
    `a queued acquire with ${what}`,
    (backend, key) =>
      (backend.queue as QueueCapability).acquire(
        loose<QueuedAcquireRequest>({ ...queued(key, 't'), ...fields }),
      ),
    argument,
  ];
}

/** Calls of each capability; they run for a backend that declares it. */
const badCapabilityCalls: [feature: BackendFeature, ...BadCall][] = [
  ['queue', ...badQueued('a place ttl of 0', { placeTtlMs: 0 }, 'placeTtlMs')],
  ['queue', ...badQueued('no place ttl', { placeTtlMs: undefined }, 'placeTtlMs')],
  ['queue', ...badQueued('a fractional order', { order: 1.5 }, 'order')],
  ['queue', ...badQueued('a negative order', { order: -1 }, 'order')],
  ['queue', ...badQueued('a handoff as true', { handoff: true }, 'handoff')],
  [
    'queue',
    ...badQueued('a handoff attempt of 0', { handoff: { attempt: 0, ttlMs: 1_000 } }, 'attempt'),
  ],
  [
    'queue',
    ...badQueued(
      'a handoff lease over the ttl',
      { handoff: { attempt: 1, ttlMs: 60_000 } },
      'handoff.ttlMs',
    ),
  ],
  ['queue', ...badQueued('an empty key', { key: '' }, 'key')],
  [
    'wakeUps',
    'waitForRelease with an empty key',
    (b) => (b.wakeUps as WakeUpCapability).waitForRelease({ key: '', signal }),
    'key',
  ],
  [
    'handoff',
    'waitForGrant without a token',
    (b, key) => (b.handoff as HandoffCapability).waitForGrant(loose({ key, signal, attempt: 1 })),
    'token',
  ],
  [
    'handoff',
    'waitForGrant with an attempt of 0',
    (b, key) =>
      (b.handoff as HandoffCapability).waitForGrant({ key, signal, token: 't', attempt: 0 }),
    'attempt',
  ],
  [
    'fences',
    'fences.advance with a negative fence',
    (b, key) => (b.fences as FenceCapability).advance({ key, fence: -1 }),
    'fence',
  ],
  [
    'fences',
    'fences.advance with a NaN fence',
    (b, key) => (b.fences as FenceCapability).advance({ key, fence: Number.NaN }),
    'fence',
  ],
  [
    'fences',
    'fences.advance with an empty key',
    (b) => (b.fences as FenceCapability).advance({ key: '', fence: 1 }),
    'key',
  ],
  [
    'inspection',
    'inspect with an empty key',
    (b) => (b.inspection as InspectionCapability).inspect({ key: '' }),
    'key',
  ],
  [
    'inspection',
    'inspect without a request',
    (b) => (b.inspection as InspectionCapability).inspect(loose(undefined)),
    'request',
  ],
  [
    'listing',
    'list with an empty pattern',
    (b) => (b.listing as ListingCapability).list({ match: '' }),
    'match',
  ],
  [
    'listing',
    'list with a count of 0',
    (b) => (b.listing as ListingCapability).list({ count: 0 }),
    'count',
  ],
  [
    'listing',
    'list with an empty cursor',
    (b) => (b.listing as ListingCapability).list({ cursor: '' }),
    'cursor',
  ],
];

async function expectInvalidArgument(
  call: () => Promise<unknown>,
  argument: string,
): Promise<void> {
  // A synchronous throw fails too: LockManager fires some backend calls without awaiting them (a
  // release after a failed acquire), and such an error would escape every handler.
  const error = await rejectionOf(call);
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect(error).toMatchObject({
    argument: expect.stringMatching(new RegExp(`(^|\\.)${argument}$`)),
  });
}

export function badInputTests(ctx: ConformanceContext): void {
  it.each(badCalls)('refuses %s with InvalidArgumentError', async (_, call, argument) => {
    await expectInvalidArgument(() => call(ctx.backend, ctx.key()), argument);
  });

  const declared = badCapabilityCalls.filter(([feature]) => ctx.has(feature));
  if (declared.length > 0) {
    it.for(declared)('%s: refuses %s with InvalidArgumentError', async ([, , call, argument]) => {
      await expectInvalidArgument(() => call(ctx.backend, ctx.key()), argument);
    });
  }

  it('leaves a key untouched by the requests it refused', async () => {
    const key = ctx.key();
    await expectInvalidArgument(
      () => ctx.backend.acquire(request(key, 'bad', { limit: 1, weight: 2 })),
      'weight',
    );
    expectGranted(await ctx.backend.acquire(request(key, 'owner')));
    // A ttl of 0 applied before the check would have ended the owner's lease.
    await expectInvalidArgument(
      () => ctx.backend.extend({ key, token: 'owner', ttlMs: 0 }),
      'ttlMs',
    );
    expect((await ctx.backend.acquire(request(key, 'other'))).ok).toBe(false);
    expect(await ctx.backend.release({ key, token: 'owner' })).toBe(true);
  });
}
