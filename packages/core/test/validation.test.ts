import { describe, expect, it } from 'vitest';
import {
  BackendError,
  DeadboltError,
  InvalidArgumentError,
  LockLostError,
  LockManager,
  LockNotHeldError,
  LockTimeoutError,
  QuorumError,
} from '../src/index.js';
import { RecordingBackend } from './helpers.js';

const backend = new RecordingBackend();
const locks = new LockManager({ backend });
const call = (run: (locks: LockManager) => unknown) => () => run(locks);

/** Every call is rejected synchronously, before any I/O, with the argument named. */
const badCalls: [string, () => unknown, string][] = [
  ['an empty key', call((l) => l.acquire('')), 'key'],
  ['a non-string key', call((l) => l.acquire(42 as never)), 'key'],
  ['a key over 512 bytes', call((l) => l.acquire('ü'.repeat(257))), 'key'],
  ['ttl 0', call((l) => l.acquire('k', { ttl: 0 })), 'options.ttl'],
  ['a negative ttl', call((l) => l.acquire('k', { ttl: -5 })), 'options.ttl'],
  ['a NaN ttl', call((l) => l.acquire('k', { ttl: Number.NaN })), 'options.ttl'],
  [
    'an infinite ttl',
    call((l) => l.acquire('k', { ttl: Number.POSITIVE_INFINITY })),
    'options.ttl',
  ],
  ['a string ttl', call((l) => l.acquire('k', { ttl: '100' as never })), 'options.ttl'],
  ['a negative wait', call((l) => l.acquire('k', { wait: -1 })), 'options.wait'],
  [
    'an infinite wait',
    call((l) => l.acquire('k', { wait: Number.POSITIVE_INFINITY })),
    'options.wait',
  ],
  [
    'a non-boolean autoExtend',
    call((l) => l.acquire('k', { autoExtend: 1 as never })),
    'options.autoExtend',
  ],
  [
    'a signal that is not an AbortSignal',
    call((l) => l.acquire('k', { signal: {} as never })),
    'options.signal',
  ],
  ['a typo in an option name', call((l) => l.acquire('k', { ttL: 5 } as never)), 'options.ttL'],
  ['options that are not an object', call((l) => l.acquire('k', 5 as never)), 'options'],
  [
    'wait passed to tryAcquire',
    call((l) => l.tryAcquire('k', { wait: 5 } as never)),
    'options.wait',
  ],
  ['a non-function fn', call((l) => l.withLock('k', 'fn' as never)), 'fn'],
  ['a limit of 0', call((l) => l.semaphore('k', { limit: 0 })), 'options.limit'],
  ['a fractional limit', call((l) => l.semaphore('k', { limit: 2.5 })), 'options.limit'],
  ['a missing limit', call((l) => l.semaphore('k', {} as never)), 'options.limit'],
  [
    'a weight of 0',
    call((l) => l.semaphore('k', { limit: 3 }).acquire({ weight: 0 })),
    'options.weight',
  ],
  [
    'a weight over the limit',
    call((l) => l.semaphore('k', { limit: 3 }).acquire({ weight: 4 })),
    'options.weight',
  ],
  [
    'a fractional weight',
    call((l) => l.semaphore('k', { limit: 3 }).tryAcquire({ weight: 1.5 })),
    'options.weight',
  ],
  ['no options at all', () => new LockManager(undefined as never), 'options'],
  [
    'a backend missing release',
    () => new LockManager({ backend: { acquire() {}, extend() {} } as never }),
    'options.backend',
  ],
  [
    'a backend that is not an object',
    () => new LockManager({ backend: 'redis' as never }),
    'options.backend',
  ],
  [
    'an unknown manager option',
    () => new LockManager({ backend, prefix: 'x' } as never),
    'options.prefix',
  ],
  [
    'a bad default ttl',
    () => new LockManager({ backend, defaults: { ttl: 0 } }),
    'options.defaults.ttl',
  ],
  [
    'a backoff max below its initial',
    () => new LockManager({ backend, backoff: { initialMs: 100, maxMs: 10 } }),
    'options.backoff.maxMs',
  ],
];

describe('bad input', () => {
  it.each(badCalls)('rejects %s with InvalidArgumentError before any I/O', (_, run, argument) => {
    const callsBefore = backend.calls.length;
    let error: unknown;
    try {
      run();
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).argument).toBe(argument);
    expect((error as Error).message).toContain(argument);
    expect(backend.calls.length).toBe(callsBefore);
  });

  it('rejects a bad ttl given to extend()', async () => {
    const lock = await locks.acquire('extend-bad-ttl');
    await expect(lock.extend(0)).rejects.toBeInstanceOf(InvalidArgumentError);
    await lock.release();
  });
});

describe('errors', () => {
  it.each([
    [new LockTimeoutError('k', 5), 'LOCK_TIMEOUT', 'LockTimeoutError'],
    [new LockLostError('k', 'expired'), 'LOCK_LOST', 'LockLostError'],
    [new LockNotHeldError('k', 'released'), 'LOCK_NOT_HELD', 'LockNotHeldError'],
    [new QuorumError('no majority', [new Error('down'), null]), 'QUORUM', 'QuorumError'],
    [new BackendError('failed', new Error('ECONNRESET')), 'BACKEND', 'BackendError'],
    [new InvalidArgumentError('ttl', 'bad'), 'INVALID_ARGUMENT', 'InvalidArgumentError'],
  ] as const)('%s has its code, name and the [deadbolt] prefix', (error, code, name) => {
    expect(error).toBeInstanceOf(DeadboltError);
    expect(error.code).toBe(code);
    expect(error.name).toBe(name);
    expect(error.message.startsWith('[deadbolt] ')).toBe(true);
  });

  it('keeps the original error as the cause of a BackendError', () => {
    const original = new Error('ECONNRESET');
    expect(new BackendError('acquire failed', original).cause).toBe(original);
  });
});
