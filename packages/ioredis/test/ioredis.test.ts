import { InvalidArgumentError } from '@deadbolt/core';
import { runRedisAdapterSuite } from '@deadbolt/testing';
import { Cluster, Redis } from 'ioredis';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { IoredisBackend } from '../src/index.js';

runRedisAdapterSuite({
  name: 'ioredis',
  connect: async (url, options) => {
    const client = new Redis(url);
    // The fault tests kill the server: connection errors are expected there.
    client.on('error', () => undefined);
    return {
      backend: new IoredisBackend(client, options),
      ping: () => client.ping(),
      close: async () => {
        client.disconnect();
      },
    };
  },
});

describe('IoredisBackend', () => {
  it.each([
    ['null', null],
    ['a plain object', {}],
    ['a node-redis client', createClient()],
    ['an ioredis Cluster', new Cluster([], { lazyConnect: true })],
  ])('rejects %s as the client', (_, client) => {
    expect(() => new IoredisBackend(client as never)).toThrow(InvalidArgumentError);
  });

  it('rejects a prefix with braces and unknown options', () => {
    const client = new Redis({ lazyConnect: true });
    expect(() => new IoredisBackend(client, { prefix: 'a{b' })).toThrow('options.prefix');
    expect(() => new IoredisBackend(client, { prefx: 'a' } as never)).toThrow('options.prefx');
    client.disconnect();
  });
});
