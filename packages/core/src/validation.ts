import type {
  AcquireRequest,
  AdvanceFenceRequest,
  ExtendRequest,
  LockBackend,
  ReleaseRequest,
  WaitRequest,
} from './backend.js';
import { InvalidArgumentError } from './errors.js';

/** Longest key accepted, in UTF-8 bytes: keeps keys printable in tools and cheap to store. */
export const MAX_KEY_BYTES = 512;

/**
 * Longest duration accepted, in milliseconds: 2^31 - 1 (about 24.8 days), the longest delay a
 * Node.js timer keeps. A longer one fires after 1 ms, which would end a lease or a wait at once.
 */
export const MAX_DURATION_MS = 2_147_483_647;

/**
 * Shortest lease accepted, in milliseconds. Backends keep whole milliseconds and round a fraction
 * up, so a shorter lease would be stored as 1 ms while the lock counts only the fraction, and
 * such a lock is lost before its grant arrives (`tryAcquire` of a free key resolved `null`).
 */
export const MIN_TTL_MS = 1;

/**
 * A UTF-16 surrogate that is not half of a pair. Such a string has no UTF-8 form: Redis would
 * store U+FFFD in its place, so two different keys would name one lock there but two in memory.
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Checks a lock key: a non-empty, well-formed string (no lone surrogate) of at most
 * {@link MAX_KEY_BYTES} UTF-8 bytes.
 */
export function assertKey(key: unknown, argument = 'key'): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidArgumentError(argument, `expected a string, got ${typeName(key)}`);
  }
  if (key.length === 0) throw new InvalidArgumentError(argument, 'must not be empty');
  if (LONE_SURROGATE.test(key)) {
    throw new InvalidArgumentError(
      argument,
      'contains a lone UTF-16 surrogate, which has no UTF-8 form; pass well-formed text',
    );
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new InvalidArgumentError(argument, `is ${bytes} bytes; at most ${MAX_KEY_BYTES} allowed`);
  }
}

/**
 * A duration other than a lease (a backoff delay, a queue place, a retry hint): a number of
 * milliseconds above 0 and at most {@link MAX_DURATION_MS}. Fractions are allowed.
 */
export function assertPositiveDuration(value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number' || !(value > 0 && value <= MAX_DURATION_MS)) {
    throw new InvalidArgumentError(
      argument,
      `expected a number of milliseconds > 0 and <= ${MAX_DURATION_MS}, got ${show(value)}`,
    );
  }
}

/**
 * A lease length: a number of milliseconds from {@link MIN_TTL_MS} to {@link MAX_DURATION_MS}.
 * Fractions are allowed (backends round a lease up to the next whole millisecond).
 */
export function assertTtl(value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number' || !(value >= MIN_TTL_MS && value <= MAX_DURATION_MS)) {
    throw new InvalidArgumentError(
      argument,
      `expected a number of milliseconds >= ${MIN_TTL_MS} and <= ${MAX_DURATION_MS}, got ${show(value)}`,
    );
  }
}

/** A duration that may be zero (for example `wait: 0`), at most {@link MAX_DURATION_MS}. */
export function assertNonNegativeDuration(
  value: unknown,
  argument: string,
): asserts value is number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_DURATION_MS)) {
    throw new InvalidArgumentError(
      argument,
      `expected a number of milliseconds >= 0 and <= ${MAX_DURATION_MS}, got ${show(value)}`,
    );
  }
}

export function assertPositiveInteger(value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(argument, `expected an integer >= 1, got ${show(value)}`);
  }
}

export function assertBoolean(value: unknown, argument: string): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(argument, `expected true or false, got ${show(value)}`);
  }
}

export function assertSignal(value: unknown, argument: string): asserts value is AbortSignal {
  if (!(value instanceof AbortSignal)) {
    throw new InvalidArgumentError(argument, `expected an AbortSignal, got ${typeName(value)}`);
  }
}

export function assertFunction(
  value: unknown,
  argument: string,
): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') {
    throw new InvalidArgumentError(argument, `expected a function, got ${typeName(value)}`);
  }
}

/**
 * Rejects option names outside `allowed`, so a typo such as `ttL` fails loudly
 * instead of silently falling back to the default.
 */
export function assertOptions(
  options: unknown,
  argument: string,
  allowed: readonly string[],
): asserts options is object | undefined {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(argument, `expected an object, got ${typeName(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name)) {
      throw new InvalidArgumentError(
        `${argument}.${name}`,
        `unknown option; expected one of ${allowed.join(', ')}`,
      );
    }
  }
}

export function assertBackend(value: unknown, argument = 'backend'): asserts value is LockBackend {
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(
      argument,
      `expected a LockBackend object, got ${typeName(value)}`,
    );
  }
  for (const method of ['acquire', 'extend', 'release'] as const) {
    if (typeof (value as Record<string, unknown>)[method] !== 'function') {
      throw new InvalidArgumentError(argument, `is missing the method ${method}()`);
    }
  }
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof value;
}

/** A bad value as an error message shows it: numbers as they are, strings quoted and cut short. */
export function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  return typeName(value);
}

/**
 * Checks an {@link AcquireRequest} as every backend must before any I/O. Backends call it so
 * that a request built by hand (not through `LockManager`) fails the same way everywhere.
 */
export function assertAcquireRequest(request: AcquireRequest): void {
  assertRequestBase(request, 'request');
  assertTtl(request.ttlMs, 'request.ttlMs');
  assertPositiveInteger(request.limit, 'request.limit');
  assertPositiveInteger(request.weight, 'request.weight');
  if (request.queueTtlMs !== undefined) {
    assertPositiveDuration(request.queueTtlMs, 'request.queueTtlMs');
  }
  const needsPlace = (argument: string) =>
    new InvalidArgumentError(
      argument,
      'needs request.queueTtlMs: only a queued request has a place',
    );
  if (request.queueOrder !== undefined) {
    if (!Number.isSafeInteger(request.queueOrder) || request.queueOrder < 0) {
      throw new InvalidArgumentError(
        'request.queueOrder',
        `expected a non-negative safe integer, got ${show(request.queueOrder)}`,
      );
    }
    if (request.queueTtlMs === undefined) throw needsPlace('request.queueOrder');
  }
  if (request.handoff !== undefined) {
    const { handoff } = request;
    if (typeof handoff !== 'object' || handoff === null) {
      throw new InvalidArgumentError(
        'request.handoff',
        `expected { attempt, ttlMs }, got ${typeName(handoff)}`,
      );
    }
    assertPositiveInteger(handoff.attempt, 'request.handoff.attempt');
    assertPositiveDuration(handoff.ttlMs, 'request.handoff.ttlMs');
    if (handoff.ttlMs > request.ttlMs) {
      throw new InvalidArgumentError(
        'request.handoff.ttlMs',
        `${handoff.ttlMs} is more than request.ttlMs ${request.ttlMs}`,
      );
    }
    if (request.queueTtlMs === undefined) throw needsPlace('request.handoff');
  }
  if (request.weight > request.limit) {
    throw new InvalidArgumentError(
      'request.weight',
      `${request.weight} is more than request.limit ${request.limit}`,
    );
  }
}

/** Checks an {@link ExtendRequest} (see {@link assertAcquireRequest}). */
export function assertExtendRequest(request: ExtendRequest): void {
  assertRequestBase(request, 'request');
  assertTtl(request.ttlMs, 'request.ttlMs');
}

/** Checks a {@link ReleaseRequest} (see {@link assertAcquireRequest}). */
export function assertReleaseRequest(request: ReleaseRequest): void {
  assertRequestBase(request, 'request');
}

/**
 * Checks a {@link WaitRequest} before any I/O (see {@link assertAcquireRequest}): a valid key, an
 * `AbortSignal`, `since`, when given, a finite number of epoch milliseconds, and `handoff`, when
 * given, a non-empty token and an attempt from 1 up.
 */
export function assertWaitRequest(request: WaitRequest): void {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError('request', `expected an object, got ${typeName(request)}`);
  }
  const { key, signal, since, handoff } = request;
  assertKey(key, 'request.key');
  assertSignal(signal, 'request.signal');
  if (since !== undefined && (typeof since !== 'number' || !Number.isFinite(since))) {
    throw new InvalidArgumentError(
      'request.since',
      `expected epoch milliseconds, got ${show(since)}`,
    );
  }
  if (handoff !== undefined) {
    if (typeof handoff !== 'object' || handoff === null) {
      throw new InvalidArgumentError(
        'request.handoff',
        `expected { token, attempt }, got ${typeName(handoff)}`,
      );
    }
    if (typeof handoff.token !== 'string' || handoff.token.length === 0) {
      throw new InvalidArgumentError('request.handoff.token', 'expected a non-empty string');
    }
    assertPositiveInteger(handoff.attempt, 'request.handoff.attempt');
  }
}

/** Checks an {@link AdvanceFenceRequest} (see {@link assertAcquireRequest}). */
export function assertAdvanceFenceRequest(request: AdvanceFenceRequest): void {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError('request', `expected an object, got ${typeName(request)}`);
  }
  assertKey(request.key, 'request.key');
  if (!Number.isSafeInteger(request.fence) || request.fence < 0) {
    throw new InvalidArgumentError(
      'request.fence',
      `expected a non-negative safe integer, got ${show(request.fence)}`,
    );
  }
}

function assertRequestBase(request: unknown, argument: string): void {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError(argument, `expected an object, got ${typeName(request)}`);
  }
  const { key, token } = request as { key?: unknown; token?: unknown };
  assertKey(key, `${argument}.key`);
  if (typeof token !== 'string' || token.length === 0) {
    throw new InvalidArgumentError(`${argument}.token`, 'expected a non-empty string');
  }
}
