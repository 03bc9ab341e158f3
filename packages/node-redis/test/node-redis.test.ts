import { InvalidArgumentError } from '@deadbolt/core';
import { runRedisAdapterSuite } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { createClient as createClientV5 } from 'redis5';
import { describe, expect, it } from 'vitest';
import { NodeRedisBackend } from '../src/index.js';

/** Connects a client of one node-redis major; both majors run the same suite. */
async function connectWith(
  client: ReturnType<typeof createClient> | ReturnType<typeof createClientV5>,
  options?: { prefix?: string },
) {
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
}

runRedisAdapterSuite({
  name: 'node-redis 6',
  connect: (url, options) => connectWith(createClient({ url }), options),
});
runRedisAdapterSuite({
  name: 'node-redis 5',
  connect: (url, options) => connectWith(createClientV5({ url }), options),
});

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
