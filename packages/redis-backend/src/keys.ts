import { InvalidArgumentError } from '@deadbolt/core';
import type { EvictionCheck } from './eviction.js';

/**
 * The hash tag of a user key: the key with `%`, `{` and `}` percent-encoded. Encoding keeps the
 * mapping injective and the tag non-empty and brace-free, so Redis Cluster hashes exactly it
 * (a raw key starting with `}` would give an empty tag and scatter the lock over slots).
 */
export function hashTag(key: string): string {
  // Most keys have none of the three characters: testing is cheaper than a replace with a callback.
  if (!NEEDS_ENCODING.test(key)) return key;
  return key.replace(ENCODED, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

const NEEDS_ENCODING = /[%{}]/;
const ENCODED = /[%{}]/g;

/** The user key whose {@link hashTag} is `tag`; undefined when no key has it (not a lock's name). */
export function keyOfTag(tag: string): string | undefined {
  const key = tag.includes('%')
    ? tag.replace(ENCODING, (code) => String.fromCharCode(Number.parseInt(code.slice(1), 16)))
    : tag;
  // Catches braces and a `%` that encodes nothing: hashTag never writes them.
  return hashTag(key) === tag ? key : undefined;
}

const ENCODING = /%(?:25|7B|7D)/g;

/**
 * The Redis name of the lock `key` under `prefix`: `${prefix}:{${hashTag(key)}}`, one hash that
 * holds the whole lock, and also the channel its releases are published on (the same slot on a
 * Cluster). The prefix has no braces, so the first `{` ends it; the tag has none either, so two
 * (prefix, key) pairs never share a name.
 */
export function lockKey(prefix: string, key: string): string {
  return `${prefix}:{${hashTag(key)}}`;
}

/**
 * The `keyPrefix` in a client's options (ioredis, node-redis 6; a string or bytes) as text, `''`
 * without one. Such a client adds it to the KEYS of a script, so releases are published on the
 * prefixed name of the lock, but not to pub/sub channels: the subscriber must add it itself.
 */
export function clientKeyPrefix(options: unknown): string {
  const keyPrefix = (options as { keyPrefix?: unknown } | null | undefined)?.keyPrefix;
  if (typeof keyPrefix === 'string') return keyPrefix;
  return keyPrefix instanceof Uint8Array ? Buffer.from(keyPrefix).toString('utf8') : '';
}

/** Options every deadbolt Redis adapter accepts. */
export interface RedisBackendOptions {
  /**
   * Namespace of every key and channel the backend touches: two backends with different prefixes
   * never see each other's locks. 1 to 64 characters, without `{` or `}`.
   * @default 'deadbolt'
   */
  prefix?: string;
  /**
   * What to do when the server may evict keys when memory runs out (`maxmemory` above 0 and a
   * `maxmemory-policy` other than `noeviction`, `volatile-*` included: a lock's hash always has an
   * expiry), which would let another process acquire a lock that is still held. The backend asks
   * once, before its first acquire, with `INFO memory` from a script (on a Cluster, every master).
   * `'error'`: acquires reject with `BackendError`, and each asks again until the server is
   * fixed. `'warn'`: one `process.emitWarning` (code `DEADBOLT_EVICTION`), then locking goes on.
   * `'off'`: no check. When the server does not let `INFO` run, a warning (code
   * `DEADBOLT_EVICTION_UNCHECKED`) says the check could not be made, and locking goes on.
   * @default 'error'
   */
  evictionCheck?: EvictionCheck;
}

/** Validates adapter options (unknown names, the prefix's shape, evictionCheck) and fills in defaults. */
export function resolveRedisBackendOptions(
  options: RedisBackendOptions | undefined,
): Required<RedisBackendOptions> {
  if (options === undefined) return { prefix: 'deadbolt', evictionCheck: 'error' };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError('options', 'expected an object such as { prefix }');
  }
  for (const name of Object.keys(options)) {
    if (name !== 'prefix' && name !== 'evictionCheck') {
      throw new InvalidArgumentError(
        `options.${name}`,
        'unknown option; expected prefix or evictionCheck',
      );
    }
  }
  const { prefix = 'deadbolt', evictionCheck = 'error' } = options;
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 64) {
    throw new InvalidArgumentError('options.prefix', 'expected a string of 1 to 64 characters');
  }
  if (/[{}]/.test(prefix)) {
    throw new InvalidArgumentError(
      'options.prefix',
      'must not contain { or }: they would change the hash slot of every key',
    );
  }
  if (evictionCheck !== 'error' && evictionCheck !== 'warn' && evictionCheck !== 'off') {
    throw new InvalidArgumentError('options.evictionCheck', "expected 'error', 'warn' or 'off'");
  }
  return { prefix, evictionCheck };
}
