import type {
  AcquireRequest,
  AdvanceFenceRequest,
  ExtendRequest,
  LockBackend,
  ReleaseRequest,
} from './backend.js';
import { InvalidArgumentError } from './errors.js';

/** Longest key accepted, in UTF-8 bytes: keeps keys printable in tools and cheap to store. */
export const MAX_KEY_BYTES = 512;

/** Checks a lock key: a non-empty string of at most {@link MAX_KEY_BYTES} UTF-8 bytes. */
export function assertKey(key: unknown, argument = 'key'): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidArgumentError(argument, `expected a string, got ${typeName(key)}`);
  }
  if (key.length === 0) throw new InvalidArgumentError(argument, 'must not be empty');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new InvalidArgumentError(argument, `is ${bytes} bytes; at most ${MAX_KEY_BYTES} allowed`);
  }
}

/** A duration that must be a positive, finite number of milliseconds. */
export function assertPositiveDuration(value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(
      argument,
      `expected a finite number of milliseconds > 0, got ${show(value)}`,
    );
  }
}

/** A duration that may be zero (for example `wait: 0`). */
export function assertNonNegativeDuration(
  value: unknown,
  argument: string,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(
      argument,
      `expected a finite number of milliseconds >= 0, got ${show(value)}`,
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

function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return typeName(value);
}

/**
 * Checks an {@link AcquireRequest} as every backend must before any I/O. Backends call it so
 * that a request built by hand (not through `LockManager`) fails the same way everywhere.
 */
export function assertAcquireRequest(request: AcquireRequest): void {
  assertRequestBase(request, 'request');
  assertPositiveDuration(request.ttlMs, 'request.ttlMs');
  assertPositiveInteger(request.limit, 'request.limit');
  assertPositiveInteger(request.weight, 'request.weight');
  if (request.queueTtlMs !== undefined) {
    assertPositiveDuration(request.queueTtlMs, 'request.queueTtlMs');
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
  assertPositiveDuration(request.ttlMs, 'request.ttlMs');
}

/** Checks a {@link ReleaseRequest} (see {@link assertAcquireRequest}). */
export function assertReleaseRequest(request: ReleaseRequest): void {
  assertRequestBase(request, 'request');
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
