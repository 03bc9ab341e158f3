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
      client,
      ping: () => client.ping(),
      close: async () => {
        client.disconnect();
      },
    };
  },
  construct: (client, options) => new IoredisBackend(client as never, options as never),
  foreignClients: () => [
    { what: 'a node-redis client', client: createClient(), says: /use NodeRedisBackend/ },
    {
      what: 'an ioredis Cluster',
      client: new Cluster([], { lazyConnect: true }),
      says: /is an ioredis Cluster; use ClusterBackend/,
    },
  ],
});

describe('IoredisBackend', () => {
  it.each([
    ['null', null, /expected an ioredis client/],
    ['a plain object', {}, /expected an ioredis client/],
    ['a node-redis client', createClient(), /looks like node-redis: use NodeRedisBackend/],
    ['an ioredis Cluster', new Cluster([], { lazyConnect: true }), /use ClusterBackend/],
  ])('rejects %s as the client', (_, client, message) => {
    const error = catchError(() => new IoredisBackend(client as never));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).argument).toBe('client');
    expect((error as InvalidArgumentError).message).toMatch(message);
  });

  it('rejects a prefix with braces and unknown options', () => {
    const client = new Redis({ lazyConnect: true });
    expect(() => new IoredisBackend(client, { prefix: 'a{b' })).toThrow('options.prefix');
    expect(() => new IoredisBackend(client, { prefx: 'a' } as never)).toThrow('options.prefx');
    client.disconnect();
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
