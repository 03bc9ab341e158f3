import {
  type AcquireOptions,
  InvalidArgumentError,
  type LockBackend,
  LockLostError,
  LockManager,
  type LockManagerOptions,
  LockNotHeldError,
  MAX_DURATION_MS,
  MAX_KEY_BYTES,
} from '@deadbolt/core';
import { expect, it } from 'vitest';
import { type ConformanceContext, eventually, rejectionOf, thrownBy } from './context.js';

/** What a misuse case gets: a manager and a backend that count their I/O, and a fresh key. */
interface Tools {
  locks: LockManager;
  backend: LockBackend;
  /**
   * The backend under test itself, for requests that must be refused by the backend: the
   * counting wrapper cannot see inside it, so the stored names show that nothing was written.
   */
  direct: LockBackend;
  key: string;
}

/**
 * One kind of bad input through the public API: what is wrong, the call, the argument it names,
 * and how it fails. A call that returns a promise rejects (a caller's `.catch()` sees the error);
 * only constructors and factories that return no promise (`new LockManager()`, `semaphore()`,
 * `readWriteLock()`, `quorum()`) throw.
 */
type Misuse = [
  problem: string,
  call: (tools: Tools) => unknown,
  argument: string,
  says: RegExp,
  fails?: 'throws',
];

/** Hands a deliberately ill-typed value to the API, as untyped (JavaScript) callers can. */
const loose = <T>(value: unknown): T => value as T;

const acquireWith =
  (options: unknown) =>
  ({ locks, key }: Tools) =>
    locks.acquire(key, loose<AcquireOptions>(options));
const managerWith = (options: (backend: LockBackend) => unknown) => (tools: Tools) =>
  new LockManager(loose<LockManagerOptions>(options(tools.backend)));
const noop = async () => undefined;

const NOT_EMPTY = /must not be empty/;
const A_STRING = /expected a string/;
const DURATION = new RegExp(`milliseconds .*<= ${MAX_DURATION_MS}, got`);
const UNKNOWN = /unknown option; expected one of/;
const BOOLEAN = /expected true or false/;
const INTEGER = /expected an integer >= 1/;
const FUNCTION = /expected a function/;

const misuses: Misuse[] = [
  // Keys: the same rules for every call and every backend.
  ['an empty key', ({ locks }) => locks.acquire(''), 'key', NOT_EMPTY],
  ['a number as key', ({ locks }) => locks.tryAcquire(loose(42)), 'key', A_STRING],
  ['an object as key', ({ locks }) => locks.acquire(loose({ id: 1 })), 'key', A_STRING],
  [
    `a key of ${MAX_KEY_BYTES + 1} ASCII bytes`,
    ({ locks }) => locks.acquire('k'.repeat(MAX_KEY_BYTES + 1)),
    'key',
    new RegExp(`is ${MAX_KEY_BYTES + 1} bytes; at most ${MAX_KEY_BYTES}`),
  ],
  [
    'a key of 257 two-byte characters (514 UTF-8 bytes)',
    ({ locks }) => locks.withLock('é'.repeat(257), noop),
    'key',
    /is 514 bytes/,
  ],
  [
    'a key of 129 emoji (516 UTF-8 bytes)',
    ({ locks }) => locks.semaphore('🔒'.repeat(129), { limit: 2 }),
    'key',
    /is 516 bytes/,
    'throws',
  ],
  [
    'a key with a lone surrogate',
    ({ locks }) => locks.acquire('job:\uD800'),
    'key',
    /lone UTF-16 surrogate/,
  ],
  // Durations.
  ['a ttl of 0', acquireWith({ ttl: 0 }), 'options.ttl', DURATION],
  ['a ttl below 1 ms', acquireWith({ ttl: 0.5 }), 'options.ttl', DURATION],
  ['a negative ttl', acquireWith({ ttl: -1 }), 'options.ttl', DURATION],
  ['a NaN ttl', acquireWith({ ttl: Number.NaN }), 'options.ttl', DURATION],
  ['an infinite ttl', acquireWith({ ttl: Number.POSITIVE_INFINITY }), 'options.ttl', DURATION],
  ['a ttl over 2^31 - 1 ms', acquireWith({ ttl: MAX_DURATION_MS + 1 }), 'options.ttl', DURATION],
  ['a string as ttl', acquireWith({ ttl: '1000' }), 'options.ttl', DURATION],
  ['null as ttl', acquireWith({ ttl: null }), 'options.ttl', DURATION],
  ['a negative wait', acquireWith({ wait: -1 }), 'options.wait', DURATION],
  ['a NaN wait', acquireWith({ wait: Number.NaN }), 'options.wait', DURATION],
  ['an infinite wait', acquireWith({ wait: Number.POSITIVE_INFINITY }), 'options.wait', DURATION],
  ['a wait over 2^31 - 1 ms', acquireWith({ wait: 2 ** 31 }), 'options.wait', DURATION],
  // Other options.
  ['a plain object as signal', acquireWith({ signal: {} }), 'options.signal', /AbortSignal/],
  [
    'an AbortController instead of its signal',
    acquireWith({ signal: new AbortController() }),
    'options.signal',
    /expected an AbortSignal, got a AbortController/,
  ],
  [
    'a string as autoExtend',
    acquireWith({ autoExtend: 'yes' }),
    'options.autoExtend',
    /expected true, false or \{ everyMs \}, got string/,
  ],
  [
    'a renewal interval the lease would not survive',
    acquireWith({ ttl: 1_000, autoExtend: { everyMs: 950 } }),
    'options.autoExtend.everyMs',
    /not less than 90% of the ttl/,
  ],
  ['a weak chosen token', acquireWith({ token: 'job-42' }), 'options.token', /32 to 256/],
  ['a reentrant option to acquire', acquireWith({ reentrant: true }), 'options.reentrant', UNKNOWN],
  ['a number as fair', acquireWith({ fair: 1 }), 'options.fair', BOOLEAN],
  ['a typo in an option name', acquireWith({ ttL: 5_000 }), 'options.ttL', UNKNOWN],
  ['options that are a number', acquireWith(5), 'options', /expected an object/],
  ['options that are an array', acquireWith([]), 'options', /expected an object, got an array/],
  [
    '`wait` passed to tryAcquire',
    ({ locks, key }) => locks.tryAcquire(key, loose({ wait: 5 })),
    'options.wait',
    UNKNOWN,
  ],
  [
    'a withLock callback that is not a function',
    ({ locks, key }) => locks.withLock(key, loose('run')),
    'fn',
    FUNCTION,
  ],
  [
    'a withLock without a callback',
    ({ locks, key }) => locks.withLock(key, loose(undefined)),
    'fn',
    FUNCTION,
  ],
  // Semaphores and read-write locks.
  [
    'a semaphore of 0 permits',
    ({ locks, key }) => locks.semaphore(key, { limit: 0 }),
    'options.limit',
    INTEGER,
    'throws',
  ],
  [
    'a semaphore of 1.5 permits',
    ({ locks, key }) => locks.semaphore(key, { limit: 1.5 }),
    'options.limit',
    INTEGER,
    'throws',
  ],
  [
    'a semaphore without options',
    ({ locks, key }) => locks.semaphore(key, loose(undefined)),
    'options.limit',
    INTEGER,
    'throws',
  ],
  [
    'a typo in semaphore options',
    ({ locks, key }) => locks.semaphore(key, loose({ limt: 2 })),
    'options.limt',
    UNKNOWN,
    'throws',
  ],
  [
    'a weight of 0',
    ({ locks, key }) => locks.semaphore(key, { limit: 3 }).acquire({ weight: 0 }),
    'options.weight',
    INTEGER,
  ],
  [
    'a fractional weight',
    ({ locks, key }) => locks.semaphore(key, { limit: 3 }).tryAcquire({ weight: 1.5 }),
    'options.weight',
    INTEGER,
  ],
  [
    'a weight over the limit',
    ({ locks, key }) => locks.semaphore(key, { limit: 3 }).acquire({ weight: 4 }),
    'options.weight',
    /4 is more than the limit 3/,
  ],
  [
    'a withPermit callback that is not a function',
    ({ locks, key }) => locks.semaphore(key, { limit: 3 }).withPermit(loose(7)),
    'fn',
    FUNCTION,
  ],
  [
    'a read-write lock with a string as fair',
    ({ locks, key }) => locks.readWriteLock(key, loose({ fair: 'yes' })),
    'options.fair',
    BOOLEAN,
    'throws',
  ],
  [
    'a read-write lock given a limit',
    ({ locks, key }) => locks.readWriteLock(key, loose({ limit: 2 })),
    'options.limit',
    UNKNOWN,
    'throws',
  ],
  [
    'a write.withLock callback that is not a function',
    ({ locks, key }) => locks.readWriteLock(key).write.withLock(loose(null)),
    'fn',
    FUNCTION,
  ],
  // Managers.
  ['a LockManager without options', managerWith(() => undefined), 'options', /expected/, 'throws'],
  [
    'a LockManager without a backend',
    managerWith(() => ({})),
    'options.backend',
    /LockBackend/,
    'throws',
  ],
  [
    'a LockManager given a client-like object as backend',
    managerWith(() => ({ backend: { get: noop, set: noop } })),
    'options.backend',
    /missing the method acquire\(\)/,
    'throws',
  ],
  [
    'a LockManager given a prefix (prefixes belong to the backend)',
    managerWith((backend) => ({ backend, prefix: 'app' })),
    'options.prefix',
    UNKNOWN,
    'throws',
  ],
  [
    'a LockManager with a NaN default ttl',
    managerWith((backend) => ({ backend, defaults: { ttl: Number.NaN } })),
    'options.defaults.ttl',
    DURATION,
    'throws',
  ],
  [
    'a LockManager with a default ttl below 1 ms',
    managerWith((backend) => ({ backend, defaults: { ttl: 0.5 } })),
    'options.defaults.ttl',
    DURATION,
    'throws',
  ],
  [
    'a LockManager with a backoff maxMs below its initialMs',
    managerWith((backend) => ({ backend, backoff: { initialMs: 100, maxMs: 10 } })),
    'options.backoff.maxMs',
    /must be >= options\.backoff\.initialMs/,
    'throws',
  ],
  // Requests straight to the backend, as a tool or another algorithm builds them.
  [
    'a backend request with a 1e20 ms lease',
    ({ direct, key }) => direct.acquire({ key, token: 't', ttlMs: 1e20, limit: 1, weight: 1 }),
    'request.ttlMs',
    DURATION,
  ],
  [
    'a backend request with a lone surrogate in its key',
    ({ direct }) =>
      direct.acquire({ key: '\uDFFF', token: 't', ttlMs: 1_000, limit: 1, weight: 1 }),
    'request.key',
    /lone UTF-16 surrogate/,
  ],
  [
    'a backend request with a 0.5 ms lease',
    ({ direct, key }) => direct.acquire({ key, token: 't', ttlMs: 0.5, limit: 1, weight: 1 }),
    'request.ttlMs',
    DURATION,
  ],
  [
    'a backend extend of 2^31 ms',
    ({ direct, key }) => direct.extend({ key, token: 't', ttlMs: 2 ** 31 }),
    'request.ttlMs',
    DURATION,
  ],
];

/** The holders of `key` as the backend shows them (tokens and weights), for before/after checks. */
async function holdersOf(backend: LockBackend, key: string): Promise<unknown> {
  const info = await backend.inspection?.inspect({ key });
  return info?.holders.map(({ token, weight }) => ({ token, weight })) ?? null;
}

export function misuseTests(ctx: ConformanceContext): void {
  it.each(misuses)(
    'refuses %s with InvalidArgumentError naming it, before any I/O, leaving nothing behind',
    async (_, call, argument, says, fails) => {
      const key = ctx.key();
      const counted = ctx.counted();
      const locks = new LockManager({ backend: counted.backend });
      const tools = { locks, backend: counted.backend, direct: ctx.backend, key };
      const error =
        fails === 'throws' ? thrownBy(() => call(tools)) : await rejectionOf(() => call(tools));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({
        name: 'InvalidArgumentError',
        code: 'INVALID_ARGUMENT',
        argument,
      });
      expect(error.message).toContain(`[deadbolt] invalid ${argument}: `);
      expect(error.message).toMatch(says);
      expect(counted.calls).toEqual([]);
      expect(await ctx.leftovers([key])).toEqual([]);
    },
  );

  // Without a way to look at the store, the checks above cannot fail, and neither can this.
  if (ctx.seesStorage) {
    it('sees what a granted request leaves behind (so the checks above can fail)', async () => {
      const key = ctx.key();
      expect(await ctx.leftovers([key])).toEqual([]);
      const [locks] = ctx.managers(1);
      const lock = await locks!.acquire(key);
      expect((await ctx.leftovers([key])).length).toBeGreaterThan(0);
      await lock.release();
    });
  }

  it('resolves a second release() false without I/O, never throwing', async () => {
    const key = ctx.key();
    const counted = ctx.counted();
    const lock = await new LockManager({ backend: counted.backend }).acquire(key);
    expect(await lock.release()).toBe(true);
    const callsAfterFirst = counted.calls.length;
    expect(await lock.release()).toBe(false);
    expect(await lock.release()).toBe(false);
    expect(counted.calls).toHaveLength(callsAfterFirst);
    // Not `leftovers`: a released lock may keep what it stores (a Redis hash keeps its fence).
    expect(await ctx.backend.inspection?.inspect({ key })).toBeFalsy();
  });

  it('makes extend() after release() throw LockNotHeldError, without I/O', async () => {
    const key = ctx.key();
    const counted = ctx.counted();
    const lock = await new LockManager({ backend: counted.backend }).acquire(key);
    await lock.release();
    const callsAfterRelease = counted.calls.length;
    const error = await rejectionOf(() => lock.extend());
    expect(error).toBeInstanceOf(LockNotHeldError);
    expect(error).toMatchObject({ code: 'LOCK_NOT_HELD', key });
    expect(error.message).toContain(`the lock on "${key}" is not held: it was released`);
    expect(counted.calls).toHaveLength(callsAfterRelease);
  });

  it('makes extend() after the lease expired throw LockLostError; release() then resolves false', async () => {
    const key = ctx.key();
    const [locks] = ctx.managers(1);
    const lock = await locks!.acquire(key, { ttl: 200 });
    await eventually('the lease is over', async () => !lock.held);
    const error = await rejectionOf(() => lock.extend(10_000));
    expect(error).toBeInstanceOf(LockLostError);
    expect(error).toMatchObject({ code: 'LOCK_LOST', key });
    expect(error.message).toContain(`lost the lock on "${key}"`);
    expect(lock.signal.reason).toBe(error);
    expect(await lock.release()).toBe(false);
    // Nobody holds it: the failed extend did not bring the lease back.
    const next = await locks!.tryAcquire(key);
    expect(next).not.toBeNull();
    await next?.release();
  });

  it('refuses a bad ttl to lock.extend() before any I/O and leaves the lease as it was', async () => {
    const key = ctx.key();
    const counted = ctx.counted();
    const lock = await new LockManager({ backend: counted.backend }).acquire(key);
    const before = await holdersOf(ctx.backend, key);
    const callsBefore = counted.calls.length;
    for (const ttl of [0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY, MAX_DURATION_MS + 1]) {
      const error = await rejectionOf(() => lock.extend(ttl));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'ttl' });
      expect(error.message).toMatch(DURATION);
    }
    expect(counted.calls).toHaveLength(callsBefore);
    expect(lock.held).toBe(true);
    expect(await holdersOf(ctx.backend, key)).toEqual(before);
    expect(await lock.release()).toBe(true);
  });

  it("answers false to another acquisition's token and leaves the holder alone", async () => {
    const [key, otherKey] = [ctx.key(), ctx.key()];
    const [mine, theirs] = ctx.managers(2);
    const lock = await mine!.acquire(key);
    const other = await theirs!.acquire(otherKey);
    const before = await holdersOf(ctx.backend, key);
    expect(await ctx.backend.release({ key, token: other.token })).toBe(false);
    expect(await ctx.backend.extend({ key, token: other.token, ttlMs: 60_000 })).toBe(false);
    // The right token on the wrong key is just as foreign.
    expect(await ctx.backend.release({ key: otherKey, token: lock.token })).toBe(false);
    expect(await holdersOf(ctx.backend, key)).toEqual(before);
    expect(await theirs!.tryAcquire(key)).toBeNull();
    expect(await lock.release()).toBe(true);
    expect(await other.release()).toBe(true);
  });

  it.each([
    ['with a reason of its own', () => AbortSignal.abort(new Error('shutting down'))],
    ['without a reason (an AbortError)', () => AbortSignal.abort()],
  ])(
    'rejects every call given a signal already aborted %s with that reason, before any I/O',
    async (_, aborted) => {
      const key = ctx.key();
      const counted = ctx.counted();
      const locks = new LockManager({ backend: counted.backend });
      const signal = aborted();
      let ran = false;
      const calls: (() => Promise<unknown>)[] = [
        () => locks.acquire(key, { signal }),
        () => locks.tryAcquire(key, { signal }),
        () => locks.withLock(key, () => (ran = true), { signal }),
        () => locks.semaphore(key, { limit: 2 }).acquire({ signal, weight: 2 }),
        () => locks.readWriteLock(key).write.acquire({ signal }),
        () => locks.readWriteLock(key).read.tryAcquire({ signal }),
      ];
      for (const call of calls) {
        const error = await rejectionOf(call);
        expect(error).toBe(signal.reason);
      }
      expect(ran).toBe(false);
      expect(counted.calls).toEqual([]);
      expect(await ctx.leftovers([key])).toEqual([]);
    },
  );

  it('lets `await using` end a lock released inside the block without error or I/O', async () => {
    const key = ctx.key();
    const counted = ctx.counted();
    const locks = new LockManager({ backend: counted.backend });
    let callsAfterRelease = -1;
    {
      await using lock = await locks.acquire(key);
      expect(await lock.release()).toBe(true);
      callsAfterRelease = counted.calls.length;
    }
    expect(counted.calls).toHaveLength(callsAfterRelease);
    expect(await ctx.backend.inspection?.inspect({ key })).toBeFalsy();
  });
}
