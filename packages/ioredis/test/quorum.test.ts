import { type LockBackend, LockManager, QuorumError, quorum } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { NodeRedisBackend } from '@deadbolt/node-redis';
import { type RedisServer, startRedisServers } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IoredisBackend } from '../src/index.js';

let servers: RedisServer[];
let members: LockBackend[];
let closers: (() => unknown)[];

/** Commands fail fast while a server is down, so a quorum sees the failure at once. */
async function ioredisMember(server: RedisServer): Promise<LockBackend> {
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => undefined);
  await new Promise((resolve) => client.once('ready', resolve));
  const backend = new IoredisBackend(client);
  closers.push(
    () => backend.close(),
    () => client.disconnect(),
  );
  return backend;
}

async function nodeRedisMember(server: RedisServer): Promise<LockBackend> {
  const client = createClient({ url: server.url, disableOfflineQueue: true });
  client.on('error', () => undefined);
  await client.connect();
  const backend = new NodeRedisBackend(client);
  closers.push(
    () => backend.close(),
    () => client.destroy(),
  );
  return backend;
}

/** What `member` knows of `key`: null when nobody holds it there. */
const inspectOn = (member: LockBackend, key: string) => member.inspection?.inspect({ key });

/** Resolves once `member` answers a request again (its client reconnects on its own). */
async function untilAnswering(member: LockBackend): Promise<void> {
  for (;;) {
    try {
      await inspectOn(member, 'q:probe');
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

beforeEach(async () => {
  closers = [];
  servers = await startRedisServers(5);
  // Both clients mix in one quorum.
  members = [
    await ioredisMember(servers[0]!),
    await ioredisMember(servers[1]!),
    await ioredisMember(servers[2]!),
    await nodeRedisMember(servers[3]!),
    await nodeRedisMember(servers[4]!),
  ];
});

afterEach(async () => {
  for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  await Promise.all(servers.map((server) => server.stop()));
});

describe('quorum() on 5 real servers', () => {
  it('keeps working with 2 servers killed', async () => {
    const locks = new LockManager({ backend: quorum(members) });
    await servers[0]!.kill();
    await servers[3]!.kill();
    const lock = await locks.acquire('q:two-down');
    expect(await new LockManager({ backend: quorum(members) }).tryAcquire('q:two-down')).toBeNull();
    expect(await lock.release()).toBe(true);
  });

  it('fails with QuorumError naming each cause when 3 are killed', async () => {
    const locks = new LockManager({ backend: quorum(members) });
    await Promise.all([servers[0]!.kill(), servers[1]!.kill(), servers[4]!.kill()]);
    const error = await locks
      .acquire('q:three-down', { wait: 500 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuorumError);
    const causes = (error as QuorumError).causes;
    expect(causes.filter((cause) => cause !== null)).toHaveLength(3);
    expect(causes[2]).toBeNull();
  });

  it('leaves no stray holders after a partial acquisition', async () => {
    // Someone holds the key on 3 of 5 servers: a newcomer gets 2 at most, and must undo them.
    const other = quorum(members.slice(0, 3));
    await other.acquire({ key: 'q:partial', token: 'other', ttlMs: 30_000, limit: 1, weight: 1 });
    expect(await new LockManager({ backend: quorum(members) }).tryAcquire('q:partial')).toBeNull();
    for (const member of members.slice(3)) expect(await inspectOn(member, 'q:partial')).toBeNull();
  });

  it('keeps fences increasing across acquisitions on different majorities', async () => {
    const backend = quorum(members);
    const locks = new LockManager({ backend });
    const fences: number[] = [];
    for (const down of [
      [0, 1],
      [3, 4],
      [1, 2],
      [0, 4],
    ]) {
      await Promise.all(down.map((index) => servers[index]!.kill()));
      const lock = await locks.acquire('q:fences');
      fences.push(lock.fence);
      await lock.release();
      await Promise.all(down.map((index) => servers[index]!.restart()));
      // The next round needs these members back: wait until their clients have reconnected.
      await Promise.all(down.map((index) => untilAnswering(members[index]!)));
    }
    expect(fences).toEqual([...fences].sort((a, b) => a - b));
    expect(new Set(fences).size).toBe(fences.length);
  });

  it('keeps mutual exclusion for new locks after a server restarts empty', async () => {
    await servers[2]!.restart();
    await new Promise((resolve) => setTimeout(resolve, 300));
    let holders = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 8 }, () => new LockManager({ backend: quorum(members) })).map(
        async (locks) => {
          for (let round = 0; round < 3; round++) {
            await locks.withLock(
              'q:restarted',
              async () => {
                holders += 1;
                peak = Math.max(peak, holders);
                await new Promise((resolve) => setTimeout(resolve, 2));
                holders -= 1;
              },
              { wait: 120_000 },
            );
          }
        },
      ),
    );
    expect(peak).toBe(1);
    // 24 grants among 8 quorum contenders: 18 s beside a second CI run (each contender that wins
    // a different member gives back and retries); the timeout detects a livelock.
  }, 180_000);

  it('keeps a long-held lock through a rolling restart of every server, each coming back empty', async () => {
    const locks = new LockManager({ backend: quorum(members) });
    const lock = await locks.acquire('q:rolling', { ttl: 30_000 });
    for (const [index, server] of servers.entries()) {
      await server.restart();
      // Its client is back once the member answers again.
      await vi.waitFor(() => inspectOn(members[index]!, 'q:rolling'), { timeout: 10_000 });
      expect(await inspectOn(members[index]!, 'q:rolling')).toBeNull();
      await lock.extend();
      // The extension took the lease again on the server that lost it.
      expect((await inspectOn(members[index]!, 'q:rolling'))?.holders).toHaveLength(1);
    }
    expect(lock.held).toBe(true);
    expect(await new LockManager({ backend: quorum(members) }).tryAcquire('q:rolling')).toBeNull();
    expect(await lock.release()).toBe(true);
  });

  it('mixes in a memory backend', async () => {
    const mixed = quorum([members[0]!, members[3]!, new MemoryBackend()]);
    const lock = await new LockManager({ backend: mixed }).acquire('q:mixed');
    expect(lock.fence).toBeGreaterThan(0);
    expect(await lock.release()).toBe(true);
  });
});
