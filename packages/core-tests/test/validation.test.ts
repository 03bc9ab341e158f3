import {
  InvalidArgumentError,
  type LockBackend,
  LockManager,
  MAX_DURATION_MS,
  MAX_KEY_BYTES,
} from '@deadbolt/core';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingBackend, rejectionOf, thrownBy } from './helpers.js';

let backend: RecordingBackend;
let locks: LockManager;
beforeEach(() => {
  backend = new RecordingBackend();
  locks = new LockManager({ backend });
});

/** Each row: what is wrong, the call that gets it, and the argument the error must name. */
type BadCall = [problem: string, run: (locks: LockManager) => unknown, argument: string];

/**
 * A call that returns a promise: rejected (never thrown at once) with InvalidArgumentError naming
 * the argument, before any backend call.
 */
async function expectRejectedBeforeIo(run: () => unknown, argument: string): Promise<void> {
  expectRefusedBeforeIo(await rejectionOf(run), argument);
}

/** A constructor or `semaphore()`, which return no promise: thrown at once, as above. */
function expectThrownBeforeIo(run: () => unknown, argument: string): void {
  expectRefusedBeforeIo(thrownBy(run), argument);
}

function expectRefusedBeforeIo(error: unknown, argument: string): void {
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
  expect((error as InvalidArgumentError).argument).toBe(argument);
  expect((error as Error).message).toMatch(/^\[deadbolt\] invalid /);
  expect((error as Error).message).toContain(argument);
  expect(backend.calls).toEqual([]);
}

const badKeys: [string, unknown][] = [
  ['an empty key', ''],
  ['a number as key', 42],
  ['an undefined key', undefined],
  ['a null key', null],
  ['an object as key', { id: 1 }],
  [`a key of ${MAX_KEY_BYTES + 1} ASCII bytes`, 'a'.repeat(MAX_KEY_BYTES + 1)],
  // 257 characters, but 514 bytes in UTF-8: the limit counts bytes.
  ['a key of 257 two-byte characters', 'ü'.repeat(257)],
  // 258 UTF-16 code units, 516 bytes.
  ['a key of 129 emoji', '😀'.repeat(129)],
  // Lone surrogates have no UTF-8 form: Redis would store both of these as U+FFFD, one lock.
  ['a key with a lone high surrogate', 'job:\uD800'],
  ['a key with a lone low surrogate', '\uDC00:job'],
  ['a key with surrogates in the wrong order', '\uDE00\uD83D'],
];

describe('keys', () => {
  it.each(badKeys)('acquire rejects %s', async (_, key) => {
    await expectRejectedBeforeIo(() => locks.acquire(key as string), 'key');
  });

  it.each(badKeys)('tryAcquire rejects %s', async (_, key) => {
    await expectRejectedBeforeIo(() => locks.tryAcquire(key as string), 'key');
  });

  it.each(badKeys)('withLock rejects %s without running fn', async (_, key) => {
    const fn = vi.fn();
    await expectRejectedBeforeIo(() => locks.withLock(key as string, fn), 'key');
    expect(fn).not.toHaveBeenCalled();
  });

  it.each(badKeys)('semaphore throws on %s', (_, key) => {
    expectThrownBeforeIo(() => locks.semaphore(key as string, { limit: 2 }), 'key');
  });

  it.each([
    ['one character', 'k'],
    [`${MAX_KEY_BYTES} ASCII bytes`, 'a'.repeat(MAX_KEY_BYTES)],
    [`${MAX_KEY_BYTES} bytes of two-byte characters`, 'ü'.repeat(MAX_KEY_BYTES / 2)],
    [`${MAX_KEY_BYTES} bytes of emoji`, '😀'.repeat(MAX_KEY_BYTES / 4)],
    ['a surrogate pair', 'lock:\uD83D\uDD12'],
  ])('accepts a key of %s', async (_, key) => {
    const lock = await locks.tryAcquire(key);
    expect(lock?.key).toBe(key);
    await lock?.release();
  });
});

const badOptions: BadCall[] = [
  ['ttl 0', (l) => l.acquire('k', { ttl: 0 }), 'options.ttl'],
  // Below 1 ms a lease is lost before its grant can arrive: tryAcquire of a free key gave null.
  ['a ttl of 0.5 ms to tryAcquire', (l) => l.tryAcquire('free', { ttl: 0.5 }), 'options.ttl'],
  ['a ttl of 0.999 ms', (l) => l.acquire('k', { ttl: 0.999 }), 'options.ttl'],
  ['a ttl of 1e-9 ms to withLock', (l) => l.withLock('k', vi.fn(), { ttl: 1e-9 }), 'options.ttl'],
  ['a negative ttl', (l) => l.acquire('k', { ttl: -5 }), 'options.ttl'],
  ['a NaN ttl', (l) => l.acquire('k', { ttl: Number.NaN }), 'options.ttl'],
  ['an infinite ttl', (l) => l.acquire('k', { ttl: Number.POSITIVE_INFINITY }), 'options.ttl'],
  ['a string ttl', (l) => l.acquire('k', { ttl: '100' as never }), 'options.ttl'],
  // A longer timer fires after 1 ms in Node.js: the lease would be reported lost at once.
  ['a ttl over 2^31 - 1 ms', (l) => l.acquire('k', { ttl: MAX_DURATION_MS + 1 }), 'options.ttl'],
  ['a ttl of 1e20 ms', (l) => l.tryAcquire('k', { ttl: 1e20 }), 'options.ttl'],
  ['a wait over 2^31 - 1 ms', (l) => l.acquire('k', { wait: 2 ** 31 }), 'options.wait'],
  ['a null ttl', (l) => l.acquire('k', { ttl: null as never }), 'options.ttl'],
  ['ttl 0 to tryAcquire', (l) => l.tryAcquire('k', { ttl: 0 }), 'options.ttl'],
  ['a NaN ttl to withLock', (l) => l.withLock('k', vi.fn(), { ttl: Number.NaN }), 'options.ttl'],
  ['a negative wait', (l) => l.acquire('k', { wait: -1 }), 'options.wait'],
  ['a NaN wait', (l) => l.acquire('k', { wait: Number.NaN }), 'options.wait'],
  ['an infinite wait', (l) => l.acquire('k', { wait: Number.POSITIVE_INFINITY }), 'options.wait'],
  ['a string wait', (l) => l.acquire('k', { wait: '5' as never }), 'options.wait'],
  ['a negative wait to withLock', (l) => l.withLock('k', vi.fn(), { wait: -1 }), 'options.wait'],
  [
    'a number as autoExtend',
    (l) => l.acquire('k', { autoExtend: 1 as never }),
    'options.autoExtend',
  ],
  [
    'a string as autoExtend',
    (l) => l.tryAcquire('k', { autoExtend: 'true' as never }),
    'options.autoExtend',
  ],
  [
    'null as autoExtend to withLock',
    (l) => l.withLock('k', vi.fn(), { autoExtend: null as never }),
    'options.autoExtend',
  ],
  ['a plain object as signal', (l) => l.acquire('k', { signal: {} as never }), 'options.signal'],
  [
    'a look-alike of an AbortSignal',
    (l) =>
      l.acquire('k', {
        signal: { aborted: false, addEventListener() {}, removeEventListener() {} } as never,
      }),
    'options.signal',
  ],
  [
    'an AbortController instead of its signal',
    (l) => l.tryAcquire('k', { signal: new AbortController() as never }),
    'options.signal',
  ],
  ['a typo in an option name (ttL)', (l) => l.acquire('k', { ttL: 5 } as never), 'options.ttL'],
  [
    'an unknown option (timeout)',
    (l) => l.acquire('k', { timeout: 5 } as never),
    'options.timeout',
  ],
  ['a typo to tryAcquire', (l) => l.tryAcquire('k', { tll: 5 } as never), 'options.tll'],
  ['a typo to withLock', (l) => l.withLock('k', vi.fn(), { wiat: 5 } as never), 'options.wiat'],
  ['`wait` passed to tryAcquire', (l) => l.tryAcquire('k', { wait: 5 } as never), 'options.wait'],
  [
    '`fair` passed to tryAcquire',
    (l) => l.tryAcquire('k', { fair: true } as never),
    'options.fair',
  ],
  ['options that are a number', (l) => l.acquire('k', 5 as never), 'options'],
  ['options that are null', (l) => l.acquire('k', null as never), 'options'],
  ['options that are an array', (l) => l.tryAcquire('k', [] as never), 'options'],
  ['a fn that is not a function', (l) => l.withLock('k', 'fn' as never), 'fn'],
  ['a missing fn', (l) => l.withLock('k', undefined as never), 'fn'],
  ['ttl 0 to a write lock', (l) => l.readWriteLock('k').write.acquire({ ttl: 0 }), 'options.ttl'],
  [
    'a typo to a read lock tryAcquire',
    (l) => l.readWriteLock('k').read.tryAcquire({ tll: 5 } as never),
    'options.tll',
  ],
  [
    'a fn that is not a function to read.withLock',
    (l) => l.readWriteLock('k').read.withLock(5 as never),
    'fn',
  ],
];

describe('call options', () => {
  it.each(badOptions)('rejects %s', async (_, run, argument) => {
    await expectRejectedBeforeIo(() => run(locks), argument);
  });

  it.each([
    ['ttl 0', 0],
    ['a ttl of 0.5 ms', 0.5],
    ['a negative ttl', -1],
    ['a NaN ttl', Number.NaN],
    ['an infinite ttl', Number.POSITIVE_INFINITY],
    ['a string ttl', '5' as never],
    ['a ttl over 2^31 - 1 ms', MAX_DURATION_MS + 1],
  ])('lock.extend rejects %s', async (_, ttl) => {
    const lock = await locks.acquire('k');
    backend.log.length = 0;
    await expectRejectedBeforeIo(() => lock.extend(ttl), 'ttl');
    expect(lock.held).toBe(true);
    await lock.release();
  });

  it('accepts the largest ttl and wait, and fractions of a millisecond', async () => {
    const lock = await locks.acquire('k', { ttl: MAX_DURATION_MS, wait: MAX_DURATION_MS });
    expect(lock.held).toBe(true);
    await lock.extend(1_000.5);
    expect(lock.held).toBe(true);
    await lock.release();
    const fractional = await locks.tryAcquire('k', { ttl: 1_000.5 });
    expect(fractional?.held).toBe(true);
    await fractional?.release();
  });

  it('accepts the smallest valid values', async () => {
    // A 1 ms lease is lost as soon as the clock ticks: hold the clock still while it is granted.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const lock = await locks.acquire('k', { ttl: 1, wait: 0, autoExtend: false });
      expect(lock.held).toBe(true);
      await lock.release();
    } finally {
      vi.useRealTimers();
    }
  });
});

const badSemaphores: BadCall[] = [
  ['limit 0', (l) => l.semaphore('k', { limit: 0 }), 'options.limit'],
  ['a negative limit', (l) => l.semaphore('k', { limit: -2 }), 'options.limit'],
  ['a fractional limit', (l) => l.semaphore('k', { limit: 2.5 }), 'options.limit'],
  ['a NaN limit', (l) => l.semaphore('k', { limit: Number.NaN }), 'options.limit'],
  [
    'an infinite limit',
    (l) => l.semaphore('k', { limit: Number.POSITIVE_INFINITY }),
    'options.limit',
  ],
  ['a string limit', (l) => l.semaphore('k', { limit: '2' as never }), 'options.limit'],
  ['a missing limit', (l) => l.semaphore('k', {} as never), 'options.limit'],
  ['no options', (l) => l.semaphore('k', undefined as never), 'options.limit'],
  ['a typo in its options', (l) => l.semaphore('k', { limt: 2 } as never), 'options.limt'],
];

const badPermitCalls: BadCall[] = [
  ['weight 0', (l) => l.semaphore('k', { limit: 3 }).acquire({ weight: 0 }), 'options.weight'],
  [
    'a negative weight',
    (l) => l.semaphore('k', { limit: 3 }).acquire({ weight: -1 }),
    'options.weight',
  ],
  [
    'a fractional weight',
    (l) => l.semaphore('k', { limit: 3 }).tryAcquire({ weight: 1.5 }),
    'options.weight',
  ],
  [
    'a NaN weight',
    (l) => l.semaphore('k', { limit: 3 }).acquire({ weight: Number.NaN }),
    'options.weight',
  ],
  [
    'a weight over the limit',
    (l) => l.semaphore('k', { limit: 3 }).acquire({ weight: 4 }),
    'options.weight',
  ],
  [
    'a weight over the limit to tryAcquire',
    (l) => l.semaphore('k', { limit: 3 }).tryAcquire({ weight: 4 }),
    'options.weight',
  ],
  [
    'a weight over the limit to withPermit',
    (l) => l.semaphore('k', { limit: 1 }).withPermit(vi.fn(), { weight: 2 }),
    'options.weight',
  ],
  [
    'a typo in permit options',
    (l) => l.semaphore('k', { limit: 3 }).acquire({ weigth: 2 } as never),
    'options.weigth',
  ],
  [
    '`wait` passed to a semaphore tryAcquire',
    (l) => l.semaphore('k', { limit: 3 }).tryAcquire({ wait: 5 } as never),
    'options.wait',
  ],
  [
    'a ttl of 0.5 ms to a semaphore tryAcquire',
    (l) => l.semaphore('k', { limit: 3 }).tryAcquire({ ttl: 0.5 }),
    'options.ttl',
  ],
  [
    'ttl 0 to a semaphore acquire',
    (l) => l.semaphore('k', { limit: 3 }).acquire({ ttl: 0 }),
    'options.ttl',
  ],
  [
    'a fn that is not a function to withPermit',
    (l) => l.semaphore('k', { limit: 3 }).withPermit(5 as never),
    'fn',
  ],
];

describe('readWriteLock arguments', () => {
  it.each([
    ['a string as fair', { fair: 'yes' }, 'options.fair'],
    ['a limit', { limit: 2 }, 'options.limit'],
  ])('readWriteLock() throws on %s', (_, options, argument) => {
    expectThrownBeforeIo(() => locks.readWriteLock('k', options as never), argument);
  });
});

describe('semaphore arguments', () => {
  it.each(badSemaphores)('semaphore() throws on %s', (_, run, argument) => {
    expectThrownBeforeIo(() => run(locks), argument);
  });

  it.each(badPermitCalls)('rejects %s', async (_, run, argument) => {
    await expectRejectedBeforeIo(() => run(locks), argument);
  });
});

/** The methods of a real (recording) backend, with some left out. */
function backendWithout(...missing: string[]): LockBackend {
  const full: Record<string, unknown> = {
    acquire: backend.acquire.bind(backend),
    extend: backend.extend.bind(backend),
    release: backend.release.bind(backend),
    wakeUps: backend.wakeUps,
  };
  for (const name of missing) delete full[name];
  return full as unknown as LockBackend;
}

const badManagers: [problem: string, options: () => unknown, argument: string][] = [
  ['no options at all', () => undefined, 'options'],
  ['null options', () => null, 'options'],
  ['a backend passed instead of options', () => backendWithout(), 'options.acquire'],
  ['no backend', () => ({}), 'options.backend'],
  ['a backend that is a string', () => ({ backend: 'redis://localhost' }), 'options.backend'],
  ['a backend that is null', () => ({ backend: null }), 'options.backend'],
  ['a backend missing acquire', () => ({ backend: backendWithout('acquire') }), 'options.backend'],
  ['a backend missing extend', () => ({ backend: backendWithout('extend') }), 'options.backend'],
  ['a backend missing release', () => ({ backend: backendWithout('release') }), 'options.backend'],
  [
    'a capability that is not an object',
    () => ({ backend: { ...backendWithout(), queue: true } }),
    'options.backend.queue',
  ],
  [
    'a capability without its method',
    () => ({ backend: { ...backendWithout(), inspection: { inspect: 'yes' } } }),
    'options.backend.inspection',
  ],
  [
    'handoff without a queue',
    () => ({ backend: { ...backendWithout(), handoff: backend.handoff } }),
    'options.backend.handoff',
  ],
  [
    'a close that is not a function',
    () => ({ backend: { ...backendWithout(), close: 1 } }),
    'options.backend.close',
  ],
  ['an empty owner', () => ({ backend, owner: '' }), 'options.owner'],
  ['an owner over 256 bytes', () => ({ backend, owner: 'é'.repeat(129) }), 'options.owner'],
  ['an unknown option', () => ({ backend, prefix: 'app:' }), 'options.prefix'],
  ['a typo in defaults', () => ({ backend, defaults: { tll: 5 } }), 'options.defaults.tll'],
  ['defaults that are not an object', () => ({ backend, defaults: 5 }), 'options.defaults'],
  ['a default ttl of 0', () => ({ backend, defaults: { ttl: 0 } }), 'options.defaults.ttl'],
  ['a default ttl of 0.5 ms', () => ({ backend, defaults: { ttl: 0.5 } }), 'options.defaults.ttl'],
  ['a NaN default ttl', () => ({ backend, defaults: { ttl: Number.NaN } }), 'options.defaults.ttl'],
  ['a negative default wait', () => ({ backend, defaults: { wait: -1 } }), 'options.defaults.wait'],
  [
    'an infinite default wait',
    () => ({ backend, defaults: { wait: Number.POSITIVE_INFINITY } }),
    'options.defaults.wait',
  ],
  [
    'a non-boolean default autoExtend',
    () => ({ backend, defaults: { autoExtend: 'yes' } }),
    'options.defaults.autoExtend',
  ],
  ['a typo in backoff', () => ({ backend, backoff: { max: 5 } }), 'options.backoff.max'],
  [
    'a backoff initialMs of 0',
    () => ({ backend, backoff: { initialMs: 0 } }),
    'options.backoff.initialMs',
  ],
  [
    'an infinite backoff maxMs',
    () => ({ backend, backoff: { maxMs: Number.POSITIVE_INFINITY } }),
    'options.backoff.maxMs',
  ],
  [
    'a default ttl over 2^31 - 1 ms',
    () => ({ backend, defaults: { ttl: 2 ** 31 } }),
    'options.defaults.ttl',
  ],
  [
    'a backoff maxMs over 2^31 - 1 ms',
    () => ({ backend, backoff: { maxMs: 2 ** 31 } }),
    'options.backoff.maxMs',
  ],
  [
    'a backoff maxMs below its initialMs',
    () => ({ backend, backoff: { initialMs: 100, maxMs: 10 } }),
    'options.backoff.maxMs',
  ],
];

describe('LockManager constructor', () => {
  it.each(badManagers)('throws on %s', (_, options, argument) => {
    expectThrownBeforeIo(
      () => new LockManager(options() as ConstructorParameters<typeof LockManager>[0]),
      argument,
    );
  });

  it('accepts a backend without the optional methods', () => {
    const minimal = backendWithout('waitForRelease');
    expect(new LockManager({ backend: minimal }).backend).toBe(minimal);
  });
});
