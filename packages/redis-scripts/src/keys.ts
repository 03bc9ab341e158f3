import { InvalidArgumentError } from '@deadbolt/core';

/** The Redis names of one lock. Every one carries the same hash tag, so a Cluster keeps them in one slot. */
export interface LockKeys {
  /** ZSET: holder token → lease expiry (server ms). */
  holders: string;
  /** HASH: holder token → permits held. */
  weights: string;
  /** STRING: the last fence granted. */
  fence: string;
  /** ZSET: queued token → arrival time (server µs). */
  queue: string;
  /** ZSET: queued token → when its place runs out (server ms). */
  waiting: string;
  /** Pub/sub channel that release (and a grant that leaves room) publishes on. */
  channel: string;
}

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

/**
 * Names of the lock `key` under `prefix`: `${prefix}:{${hashTag(key)}}:${part}`. The prefix has no
 * braces, so the first `{` ends it and two prefixes never share a name; no part's name ends
 * another's, so two keys never share one either.
 */
export function lockKeys(prefix: string, key: string): LockKeys {
  const base = `${prefix}:{${hashTag(key)}}`;
  return {
    holders: `${base}:holders`,
    weights: `${base}:weights`,
    fence: `${base}:fence`,
    queue: `${base}:queue`,
    waiting: `${base}:waiting`,
    channel: `${base}:released`,
  };
}

/** Options every deadbolt Redis adapter accepts. */
export interface RedisBackendOptions {
  /**
   * Namespace of every key and channel the backend touches: two backends with different prefixes
   * never see each other's locks. 1 to 64 characters, without `{` or `}`.
   * @default 'deadbolt'
   */
  prefix?: string;
}

/** Validates adapter options (unknown names, the prefix's shape) and fills in defaults. */
export function resolveRedisBackendOptions(
  options: RedisBackendOptions | undefined,
): Required<RedisBackendOptions> {
  if (options === undefined) return { prefix: 'deadbolt' };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError('options', 'expected an object such as { prefix }');
  }
  for (const name of Object.keys(options)) {
    if (name !== 'prefix') {
      throw new InvalidArgumentError(`options.${name}`, 'unknown option; expected prefix');
    }
  }
  const { prefix = 'deadbolt' } = options;
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 64) {
    throw new InvalidArgumentError('options.prefix', 'expected a string of 1 to 64 characters');
  }
  if (/[{}]/.test(prefix)) {
    throw new InvalidArgumentError(
      'options.prefix',
      'must not contain { or }: they would change the hash slot of every key',
    );
  }
  return { prefix };
}
