import { describe, expect, it } from 'vitest';
import { type RedisSentinelNode, startRedisSentinel } from '../src/index.js';

describe('startRedisSentinel', () => {
  // Five processes and two failovers: 21 s beside a second CI run; the timeout detects a hang.
  it('starts a master, a linked replica and three sentinels that agree, fails over on request and after a crash, and removes everything on stop()', async () => {
    const sentinel = await startRedisSentinel();
    try {
      expect(sentinel.sentinels).toHaveLength(3);
      expect(sentinel.url).toMatch(
        /^redis-sentinel:\/\/(127\.0\.0\.1:\d+,){2}127\.0\.0\.1:\d+\/deadbolt$/,
      );
      const [first, second] = sentinel.nodes as [RedisSentinelNode, RedisSentinelNode];
      expect((await sentinel.master()).port).toBe(first.port);
      // What the master holds reaches the replica.
      await first.call('SET', 'k', 'v');
      await expect.poll(() => second.call('GET', 'k')).toBe('v');

      const promoted = await sentinel.failover();
      expect(promoted.port).toBe(second.port);
      expect(((await first.call('ROLE')) as string[])[0]).toBe('slave');
      expect(await promoted.call('GET', 'k')).toBe('v');

      const survivor = await sentinel.killMaster();
      expect(survivor.port).toBe(first.port);
      expect(second.running).toBe(false);
      expect(((await survivor.call('ROLE')) as string[])[0]).toBe('master');
    } finally {
      await sentinel.stop();
    }
    // Nothing answers on any of the ports any more.
    for (const node of sentinel.nodes) await expect(node.call('PING')).rejects.toThrow();
  }, 120_000);
});
