import type { ListPage, ListRequest } from '@deadbolt/core';
import { InvalidArgumentError } from '@deadbolt/core';
import { type RedisServer, startRedisServers } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ioredisConnection, type LockServer, lockKey, RedisBackend } from '../src/index.js';
import { keyOfTag } from '../src/keys.js';
import { countingTransport, mutex, sleep, transportOf, unique } from './helpers.js';

// Two independent servers stand in for the masters of a Cluster: listing only needs servers().
let servers: RedisServer[];
let clients: Redis[];

beforeAll(async () => {
  servers = await startRedisServers(2);
  clients = servers.map((server) => new Redis(server.url).on('error', () => undefined));
});

afterAll(async () => {
  for (const client of clients ?? []) client.disconnect();
  await Promise.all((servers ?? []).map((server) => server.stop()));
});

/** A backend that locks on `client` and lists the servers `listed()` gives. */
function backendOn(
  client: Redis,
  prefix: string,
  listed?: () => readonly LockServer[],
  transport = transportOf(client),
): RedisBackend {
  return new RedisBackend(
    {
      ...ioredisConnection(client),
      transport,
      ...(listed && { servers: async () => listed() }),
    },
    { prefix, evictionCheck: 'off' },
  );
}

/** Both servers, the second under an address that sorts first. */
const both = (): LockServer[] => [
  { address: 'b:2', transport: transportOf(clients[0]!) },
  { address: 'a:1', transport: transportOf(clients[1]!) },
];

/** Every page of a listing, from the first. */
async function pages(backend: RedisBackend, request: ListRequest = {}): Promise<ListPage[]> {
  const all: ListPage[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await backend.listing.list({ ...request, ...(cursor ? { cursor } : {}) });
    all.push(page);
    cursor = page.cursor;
  } while (cursor !== null);
  return all;
}

const keysOf = (all: ListPage[]) => all.flatMap((page) => page.keys).sort();

describe('listing on Redis', () => {
  it('visits every server in the order of their addresses, naming the server in the cursor', async () => {
    const prefix = unique('servers');
    const [first, second] = clients.map((client) => backendOn(client, prefix));
    await first!.acquire(mutex('on first', 't'));
    await second!.acquire(mutex('on second', 't'));
    const all = await pages(backendOn(clients[0]!, prefix, both));
    expect(keysOf(all)).toEqual(['on first', 'on second']);
    // 'a:1' (the second server) comes first; the last page of a server hands over to the next.
    expect(all.map((page) => page.cursor).filter((cursor) => cursor !== null)).toContain('0@b:2');
    expect(all.findIndex((page) => page.keys.includes('on second'))).toBeLessThan(
      all.findIndex((page) => page.keys.includes('on first')),
    );
  });

  it('goes on with the next server when the one in the cursor is gone (a failed-over master)', async () => {
    const prefix = unique('gone');
    const [first, second] = clients.map((client) => backendOn(client, prefix));
    for (let index = 0; index < 30; index++) await second!.acquire(mutex(`a${index}`, 't'));
    await first!.acquire(mutex('b', 't'));
    let listed = both();
    const backend = backendOn(clients[0]!, prefix, () => listed);
    const page = await backend.listing.list({ count: 1 });
    expect(page.cursor).toMatch(/@a:1$/);
    listed = listed.filter((server) => server.address !== 'a:1');
    const rest = await pages(backend, { cursor: page.cursor! });
    expect(keysOf(rest)).toEqual(['b']);
  });

  it('leaves out hashes whose leases all ended, keys that are not hashes and names no key has', async () => {
    const prefix = unique('shapes');
    const client = clients[0]!;
    const backend = backendOn(client, prefix);
    await backend.acquire(mutex('held', 't'));
    await backend.acquire(mutex('ended', 't', 1));
    await client.set(lockKey(prefix, 'a string'), 'x');
    // Hashes that look held but whose names hashTag never writes.
    const future = String(Date.now() + 60_000);
    for (const name of [`${prefix}:{a}b`, `${prefix}:{a{b}`, `${prefix}:{a%41}`]) {
      await client.hset(name, '#t', future);
    }
    await sleep(10);
    expect(await client.exists(lockKey(prefix, 'ended'))).toBe(1);
    expect(keysOf(await pages(backend))).toEqual(['held']);
  });

  it('matches the glob against decoded keys, under a prefix full of glob characters', async () => {
    const odd = unique('p[1]*?\\');
    const plain = odd.replace(/[[\]*?\\]/g, '');
    const keys = ['{%}', 'job:%7B', 'job:{1}', 'job:x'];
    for (const prefix of [odd, plain]) {
      for (const key of keys) await backendOn(clients[0]!, prefix).acquire(mutex(key, 't'));
    }
    const backend = backendOn(clients[0]!, odd);
    expect(keysOf(await pages(backend))).toEqual([...keys].sort());
    expect(keysOf(await pages(backend, { match: 'job:*' }))).toEqual([
      'job:%7B',
      'job:x',
      'job:{1}',
    ]);
    expect(keysOf(await pages(backend, { match: 'job:{?}' }))).toEqual(['job:{1}']);
  });

  it("finds locks under the client's own keyPrefix", async () => {
    const prefix = unique('key-prefix');
    const client = new Redis(servers[0]!.url, { keyPrefix: 'app:' }).on('error', () => undefined);
    try {
      const backend = backendOn(client, prefix);
      await backend.acquire(mutex('prefixed', 't'));
      expect(await clients[0]!.exists(`app:${lockKey(prefix, 'prefixed')}`)).toBe(1);
      expect(keysOf(await pages(backend))).toEqual(['prefixed']);
    } finally {
      client.disconnect();
    }
  });

  it('refuses a cursor no page gave before any I/O, and asks SCAN for 1 000 names at most', async () => {
    const transport = countingTransport(transportOf(clients[0]!));
    const backend = backendOn(clients[0]!, unique('cursor'), undefined, transport);
    for (const cursor of ['next', '12x', '@a:1']) {
      const error = await backend.listing.list({ cursor }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ argument: 'request.cursor' });
    }
    expect(transport.calls).toEqual({ evalsha: 0, eval: 0 });
    const sent: string[][] = [];
    const recording = backendOn(clients[0]!, unique('count'), undefined, {
      evalsha: (sha, keys, args) => {
        sent.push([...args]);
        return transport.evalsha(sha, keys, args);
      },
      eval: (source, keys, args) => transport.eval(source, keys, args),
    });
    await recording.listing.list({ count: 5_000 });
    expect(sent.map((args) => args[2])).toEqual(['1000']);
  });
});

describe('keyOfTag', () => {
  it('decodes what hashTag encodes, and nothing it never writes', () => {
    expect(keyOfTag('%7Ba%25b%7D')).toBe('{a%b}');
    expect(keyOfTag('plain')).toBe('plain');
    for (const tag of ['a{b', 'a}b', '%41', '%', '%7b']) expect(keyOfTag(tag)).toBeUndefined();
  });
});
