import { InvalidArgumentError } from '@deadbolt/core';
import { describe, expect, it } from 'vitest';
import { hashTag, lockKeys, resolveRedisBackendOptions } from '../src/index.js';

/** The part of a name Redis Cluster hashes: between the first `{` and the next `}`. */
function clusterHashTag(name: string): string {
  const open = name.indexOf('{');
  const close = name.indexOf('}', open + 1);
  return name.slice(open + 1, close);
}

describe('key schema', () => {
  it.each(['plain', 'a key with spaces', 'clé-鍵-🔒', 'user:{42}', '}leading', '{', '%7B', '%'])(
    'keeps every name of %j in one hash slot, with a non-empty tag',
    (key) => {
      const names = Object.values(lockKeys('deadbolt', key));
      const tags = new Set(names.map(clusterHashTag));
      expect(tags.size).toBe(1);
      expect([...tags][0]).toBe(hashTag(key));
      expect(hashTag(key)).not.toBe('');
    },
  );

  it('maps distinct keys and prefixes to distinct names', () => {
    const keys = ['{', '%7B', '%257B', 'a}b', 'a%7Db', 'x', 'x:holders', 'x}:holders'];
    const names = keys.flatMap((key) =>
      ['p', 'p:x', 'q'].flatMap((prefix) => Object.values(lockKeys(prefix, key))),
    );
    expect(new Set(names).size).toBe(names.length);
  });

  it('resolves options with the default prefix and rejects bad ones', () => {
    expect(resolveRedisBackendOptions(undefined)).toEqual({ prefix: 'deadbolt' });
    expect(resolveRedisBackendOptions({ prefix: 'app' })).toEqual({ prefix: 'app' });
    for (const [options, argument] of [
      [{ prefix: 'a{b' }, 'options.prefix'],
      [{ prefix: '' }, 'options.prefix'],
      [{ prefix: 7 }, 'options.prefix'],
      [{ prefixx: 'a' }, 'options.prefixx'],
      ['a', 'options'],
    ] as const) {
      expect(() => resolveRedisBackendOptions(options as never)).toThrow(InvalidArgumentError);
      expect(() => resolveRedisBackendOptions(options as never)).toThrow(argument);
    }
  });
});
