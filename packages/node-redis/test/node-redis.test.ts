import { InvalidArgumentError } from '@deadbolt/core';
import { runRedisAdapterSuite } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { createClient as createClientV5 } from 'redis5';
import { describe, expect, it } from 'vitest';
import { NodeRedisBackend } from '../src/index.js';

for (const [major, create] of [
  ['6', createClient],
  ['5', createClientV5],
] as const) {
  runRedisAdapterSuite({
    name: `node-redis ${major}`,
    connect: async (url, options) => {
      const client = create({ url });
      // The fault tests kill the server: connection errors are expected there.
      client.on('error', () => undefined);
      await client.connect();
      return {
        backend: new NodeRedisBackend(client, options),
        ping: () => client.ping(),
        close: async () => {
          client.destroy();
        },
      };
    },
  });
}

describe('NodeRedisBackend', () => {
  it.each([
    ['null', null],
    ['a plain object', {}],
    ['an ioredis client', new Redis({ lazyConnect: true })],
    ['a node-redis cluster', createCluster({ rootNodes: [] })],
  ])('rejects %s as the client', (_, client) => {
    expect(() => new NodeRedisBackend(client as never)).toThrow(InvalidArgumentError);
  });

  it('rejects a prefix with braces and unknown options', () => {
    const client = createClient();
    expect(() => new NodeRedisBackend(client, { prefix: '}' })).toThrow('options.prefix');
    expect(() => new NodeRedisBackend(client, { prefx: 'a' } as never)).toThrow('options.prefx');
  });
});
