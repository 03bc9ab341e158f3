import { InvalidArgumentError } from '@deadbolt/core';
import { startRedis } from '@deadbolt/testing';
import { describe, expect, it } from 'vitest';
import { clientKeyPrefix, hashTag, lockKey, resolveRedisBackendOptions } from '../src/index.js';

/** The part of a name Redis Cluster hashes: between the first `{` and the next `}`, if not empty. */
function clusterHashTag(name: string): string {
  const open = name.indexOf('{');
  const close = name.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? name.slice(open + 1, close) : name;
}

const awkwardKeys = [
  'plain',
  'a key with spaces',
  'clé-鍵-🔒',
  'user:{42}',
  '}leading',
  '{',
  '}',
  '{}',
  '}{',
  '%7B',
  '%',
  'x:holders',
];

describe('key schema', () => {
  it.each(awkwardKeys)('puts the lock of %j under one non-empty hash tag', (key) => {
    expect(clusterHashTag(lockKey('deadbolt', key))).toBe(hashTag(key));
    expect(hashTag(key)).not.toBe('');
    expect(hashTag(key)).not.toMatch(/[{}]/);
  });

  it('encodes only %, { and }', () => {
    expect(hashTag('a b:c/é')).toBe('a b:c/é');
    expect(hashTag('%{}')).toBe('%25%7B%7D');
    expect(decodeURIComponent(hashTag('}{%7B'))).toBe('}{%7B');
  });

  it('maps distinct keys and prefixes to distinct names', () => {
    const keys = ['{', '%7B', '%257B', 'a}b', 'a%7Db', 'x', 'x}', 'p:x', '}'];
    const names = keys.flatMap((key) =>
      ['p', 'p:x', 'p:', 'q'].map((prefix) => lockKey(prefix, key)),
    );
    expect(new Set(names).size).toBe(names.length);
  });

  it("reads a client's keyPrefix as text, string or bytes", () => {
    expect(clientKeyPrefix({ keyPrefix: 'app:' })).toBe('app:');
    expect(clientKeyPrefix({ keyPrefix: Buffer.from('app:') })).toBe('app:');
    for (const options of [{}, { keyPrefix: undefined }, undefined, null]) {
      expect(clientKeyPrefix(options)).toBe('');
    }
  });

  it('resolves options with the default prefix and rejects bad ones', () => {
    const defaults = { prefix: 'deadbolt', evictionCheck: 'error' };
    expect(resolveRedisBackendOptions(undefined)).toEqual(defaults);
    expect(resolveRedisBackendOptions({})).toEqual(defaults);
    expect(resolveRedisBackendOptions({ prefix: 'app:locks', evictionCheck: 'warn' })).toEqual({
      prefix: 'app:locks',
      evictionCheck: 'warn',
    });
    for (const [options, argument] of [
      [{ prefix: 'a{b' }, 'options.prefix'],
      [{ prefix: 'a}' }, 'options.prefix'],
      [{ prefix: '' }, 'options.prefix'],
      [{ prefix: 'x'.repeat(65) }, 'options.prefix'],
      [{ prefix: 7 }, 'options.prefix'],
      [{ prefixx: 'a' }, 'options.prefixx'],
      [{ evictionCheck: 'ignore' }, 'options.evictionCheck'],
      [{ evictionCheck: false }, 'options.evictionCheck'],
      ['a', 'options'],
      [null, 'options'],
      [[], 'options'],
    ] as const) {
      const error = (() => {
        try {
          resolveRedisBackendOptions(options as never);
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).argument).toBe(argument);
    }
  });
});

// Redis's own answer: CLUSTER KEYSLOT only works on a node in cluster mode, which a single
// harness server can be (no slots need to be assigned to compute one).
describe.skipIf(Boolean(process.env.REDIS_URL))(
  'hash slots, as Redis Cluster computes them',
  () => {
    it('puts the lock of every key, awkward ones included, in the slot of its tag', async () => {
      await using node = await startRedis({
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      });
      for (const key of awkwardKeys) {
        expect(await node.call('CLUSTER', 'KEYSLOT', lockKey('deadbolt', key))).toBe(
          await node.call('CLUSTER', 'KEYSLOT', hashTag(key)),
        );
      }
    });
  },
);
