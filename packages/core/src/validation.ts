import type {
  AcquireRequest,
  AdvanceFenceRequest,
  ExtendRequest,
  GrantWaitRequest,
  InspectRequest,
  ListRequest,
  LockBackend,
  QueuedAcquireRequest,
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
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: short keys, the usual ones, need no count.
  if (key.length * 3 <= MAX_KEY_BYTES) return;
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

/** Every optional capability of a {@link LockBackend}, with the methods a backend that declares it has. */
export const BACKEND_CAPABILITIES = {
  queue: ['acquire'],
  wakeUps: ['waitForRelease'],
  handoff: ['waitForGrant'],
  fences: ['advance'],
  inspection: ['inspect'],
  listing: ['list'],
} as const satisfies {
  [Name in Exclude<
    keyof LockBackend,
    'acquire' | 'extend' | 'release' | 'close'
  >]: readonly (keyof NonNullable<LockBackend[Name]>)[];
};

/** The name of a capability a backend may declare (a key of {@link BACKEND_CAPABILITIES}). */
export type BackendCapability = keyof typeof BACKEND_CAPABILITIES;

/**
 * Checks a backend: the three required methods, `close` a function if present, and each
 * capability it declares an object with that capability's methods (`handoff` only with `queue`).
 */
export function assertBackend(value: unknown, argument = 'backend'): asserts value is LockBackend {
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(
      argument,
      `expected a LockBackend object, got ${typeName(value)}`,
    );
  }
  const backend = value as Record<string, unknown>;
  for (const method of ['acquire', 'extend', 'release'] as const) {
    if (typeof backend[method] !== 'function') {
      throw new InvalidArgumentError(argument, `is missing the method ${method}()`);
    }
  }
  if (backend.close !== undefined && typeof backend.close !== 'function') {
    throw new InvalidArgumentError(`${argument}.close`, 'expected a function');
  }
  for (const [name, methods] of Object.entries(BACKEND_CAPABILITIES)) {
    const capability = backend[name];
    if (capability === undefined) continue;
    if (typeof capability !== 'object' || capability === null) {
      throw new InvalidArgumentError(
        `${argument}.${name}`,
        `expected an object with ${methods.map((method) => `${method}()`).join(', ')}`,
      );
    }
    for (const method of methods) {
      if (typeof (capability as Record<string, unknown>)[method] !== 'function') {
        throw new InvalidArgumentError(`${argument}.${name}`, `is missing the method ${method}()`);
      }
    }
  }
  if (backend.handoff !== undefined && backend.queue === undefined) {
    throw new InvalidArgumentError(
      `${argument}.handoff`,
      'needs the queue capability: only a queued waiter can be handed the lock',
    );
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

/** Longest owner label accepted, in UTF-8 bytes: a label for people, not a payload. */
export const MAX_OWNER_BYTES = 256;

/**
 * Checks an {@link AcquireRequest} as every backend must before any I/O. Backends call it so
 * that a request built by hand (not through `LockManager`) fails the same way everywhere.
 */
export function assertAcquireRequest(request: AcquireRequest): void {
  assertRequestBase(request, 'request');
  assertTtl(request.ttlMs, 'request.ttlMs');
  assertPositiveInteger(request.limit, 'request.limit');
  assertPositiveInteger(request.weight, 'request.weight');
  if (request.weight > request.limit) {
    throw new InvalidArgumentError(
      'request.weight',
      `${request.weight} is more than request.limit ${request.limit}`,
    );
  }
  if (request.owner !== undefined) assertOwner(request.owner, 'request.owner');
}

/** Checks a {@link QueuedAcquireRequest} (see {@link assertAcquireRequest}). */
export function assertQueuedAcquireRequest(request: QueuedAcquireRequest): void {
  assertAcquireRequest(request);
  assertPositiveDuration(request.placeTtlMs, 'request.placeTtlMs');
  if (request.order !== undefined && !(Number.isSafeInteger(request.order) && request.order >= 0)) {
    throw new InvalidArgumentError(
      'request.order',
      `expected a non-negative safe integer, got ${show(request.order)}`,
    );
  }
  const { handoff } = request;
  if (handoff === undefined) return;
  if (typeof handoff !== 'object' || handoff === null) {
    throw new InvalidArgumentError(
      'request.handoff',
      `expected { attempt, ttlMs }, got ${typeName(handoff)}`,
    );
  }
  assertPositiveInteger(handoff.attempt, 'request.handoff.attempt');
  assertTtl(handoff.ttlMs, 'request.handoff.ttlMs');
  if (handoff.ttlMs > request.ttlMs) {
    throw new InvalidArgumentError(
      'request.handoff.ttlMs',
      `${handoff.ttlMs} is more than request.ttlMs ${request.ttlMs}`,
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
 * Checks a {@link WaitRequest} (see {@link assertAcquireRequest}): a valid key, an `AbortSignal`,
 * and `since`, when given, a finite number of epoch milliseconds.
 */
export function assertWaitRequest(request: WaitRequest): void {
  assertObject(request, 'request');
  const { key, signal, since } = request;
  assertKey(key, 'request.key');
  assertSignal(signal, 'request.signal');
  if (since !== undefined && (typeof since !== 'number' || !Number.isFinite(since))) {
    throw new InvalidArgumentError(
      'request.since',
      `expected epoch milliseconds, got ${show(since)}`,
    );
  }
}

/** Checks a {@link GrantWaitRequest}: a {@link WaitRequest} with a token and an attempt from 1. */
export function assertGrantWaitRequest(request: GrantWaitRequest): void {
  assertWaitRequest(request);
  assertToken(request.token, 'request.token');
  assertPositiveInteger(request.attempt, 'request.attempt');
}

/** Checks an {@link AdvanceFenceRequest} (see {@link assertAcquireRequest}). */
export function assertAdvanceFenceRequest(request: AdvanceFenceRequest): void {
  assertObject(request, 'request');
  assertKey(request.key, 'request.key');
  if (!Number.isSafeInteger(request.fence) || request.fence < 0) {
    throw new InvalidArgumentError(
      'request.fence',
      `expected a non-negative safe integer, got ${show(request.fence)}`,
    );
  }
}

/** Checks an {@link InspectRequest} (see {@link assertAcquireRequest}). */
export function assertInspectRequest(request: InspectRequest): void {
  assertObject(request, 'request');
  assertKey(request.key, 'request.key');
}

/** Longest `match` pattern a listing accepts, in UTF-8 bytes: a key's limit, plus escapes. */
const MAX_PATTERN_BYTES = 2 * MAX_KEY_BYTES;

/** Checks a {@link ListRequest} (see {@link assertAcquireRequest}). */
export function assertListRequest(request: ListRequest): void {
  assertObject(request, 'request');
  const { match, cursor, count } = request;
  if (match !== undefined) {
    if (typeof match !== 'string' || match.length === 0) {
      throw new InvalidArgumentError('request.match', 'expected a non-empty glob pattern');
    }
    if (Buffer.byteLength(match, 'utf8') > MAX_PATTERN_BYTES) {
      throw new InvalidArgumentError('request.match', `is over ${MAX_PATTERN_BYTES} bytes`);
    }
  }
  if (cursor !== undefined && (typeof cursor !== 'string' || cursor.length === 0)) {
    throw new InvalidArgumentError('request.cursor', 'expected the cursor of a previous page');
  }
  if (count !== undefined) assertPositiveInteger(count, 'request.count');
}

/** Checks an owner label: a well-formed string of 1 to {@link MAX_OWNER_BYTES} UTF-8 bytes. */
export function assertOwner(owner: unknown, argument: string): asserts owner is string {
  // A manager sends its one owner with every request, and each backend checks it again.
  if (owner === lastValidOwner) return;
  if (typeof owner !== 'string' || owner.length === 0 || LONE_SURROGATE.test(owner)) {
    throw new InvalidArgumentError(argument, 'expected a non-empty, well-formed string');
  }
  const bytes = Buffer.byteLength(owner, 'utf8');
  if (bytes > MAX_OWNER_BYTES) {
    throw new InvalidArgumentError(
      argument,
      `is ${bytes} bytes; at most ${MAX_OWNER_BYTES} allowed`,
    );
  }
  lastValidOwner = owner;
}

/** The last owner label that passed {@link assertOwner} (strings are immutable: it still does). */
let lastValidOwner: string | undefined;

/**
 * Checks a token a caller chose (see `AcquireOptions.token`): 32 to 256 printable ASCII
 * characters without spaces, at least 12 of them different, so that a counter, a short id or a
 * padded number is refused. Length and variety are all a check can see: the token must also come
 * from a random source.
 */
export function assertChosenToken(token: unknown, argument: string): asserts token is string {
  if (typeof token !== 'string' || !/^[!-~]{32,256}$/.test(token)) {
    throw new InvalidArgumentError(
      argument,
      'expected 32 to 256 printable ASCII characters without spaces (a v4 UUID, or 16+ random bytes in hex or base64url)',
    );
  }
  if (new Set(token).size < 12) {
    throw new InvalidArgumentError(
      argument,
      'has fewer than 12 different characters: too easy to guess; use a random value such as a v4 UUID',
    );
  }
}

function assertObject(value: unknown, argument: string): void {
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(argument, `expected an object, got ${typeName(value)}`);
  }
}

function assertToken(token: unknown, argument: string): void {
  if (typeof token !== 'string' || token.length === 0) {
    throw new InvalidArgumentError(argument, 'expected a non-empty string');
  }
}

function assertRequestBase(request: unknown, argument: string): void {
  assertObject(request, argument);
  const { key, token } = request as { key?: unknown; token?: unknown };
  assertKey(key, `${argument}.key`);
  assertToken(token, `${argument}.token`);
}
