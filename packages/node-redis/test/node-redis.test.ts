import { InvalidArgumentError } from '@deadbolt/core';
import { runRedisAdapterSuite } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { createClient, createClientPool, createCluster } from 'redis';
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
    client,
    ping: () => client.ping(),
    close: async () => {
      client.destroy();
    },
  };
}

const construct = (client: unknown, options?: unknown) =>
  new NodeRedisBackend(client as never, options as never);
const foreignClients = () => [
  {
    what: 'an ioredis client',
    client: new Redis({ lazyConnect: true }),
    says: /looks like ioredis: use IoredisBackend/,
  },
  {
    what: 'a node-redis cluster',
    client: createCluster({ rootNodes: [] }),
    says: /is a node-redis cluster; use ClusterBackend/,
  },
  {
    what: 'a node-redis client pool',
    client: createClientPool(),
    says: /client pool cannot open a subscriber/,
  },
];

runRedisAdapterSuite({
  name: 'node-redis 6',
  connect: (url, options) => connectWith(createClient({ url }), options),
  construct,
  foreignClients,
});
runRedisAdapterSuite({
  name: 'node-redis 5',
  connect: (url, options) => connectWith(createClientV5({ url }), options),
  construct,
  foreignClients,
});

describe('NodeRedisBackend', () => {
  it.each([
    ['null', null, /expected a node-redis client/],
    ['a plain object', {}, /expected a node-redis client/],
    [
      'an ioredis client',
      new Redis({ lazyConnect: true }),
      /looks like ioredis: use IoredisBackend/,
    ],
    ['a node-redis cluster', createCluster({ rootNodes: [] }), /use ClusterBackend/],
    ['a node-redis client pool', createClientPool(), /client pool cannot open a subscriber/],
  ])('rejects %s as the client', (_, client, message) => {
    const error = catchError(() => new NodeRedisBackend(client as never));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).argument).toBe('client');
    expect((error as InvalidArgumentError).message).toMatch(message);
  });

  it('rejects a prefix with braces and unknown options', () => {
    const client = createClient();
    expect(() => new NodeRedisBackend(client, { prefix: '}' })).toThrow('options.prefix');
    expect(() => new NodeRedisBackend(client, { prefx: 'a' } as never)).toThrow('options.prefx');
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
