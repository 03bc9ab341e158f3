import { nowMs } from '../clock.js';
import type { Contender, LockClient } from '../contenders/index.js';
import { percentile } from '../stats.js';
import type { Outcome, Scenario } from './types.js';

/** Keys rotate through this many per contender, so consecutive pairs never share a key. */
const KEY_POOL = 1_000;

interface Tally {
  pairs: number;
  busyMs: number;
  latencies: number[];
  next: number;
}

/**
 * Scenario 1: one client, acquire then release, one pair after another, each on another key.
 * Every contender gets a short slice in turn, round after round (the order rotates), so a
 * slowdown of the machine lands on all of them alike instead of on whoever ran at that moment.
 */
export const uncontended: Scenario = {
  id: 'uncontended',
  title: '1. Uncontended acquire + release, one client, distinct keys',
  description:
    'One client does acquire → release pairs back to back, each pair on another key (a rotating set of ' +
    `${KEY_POOL}); contenders run in interleaved slices. Pair latency is acquire() call to release() resolved.`,
  columns: [
    { metric: 'pairsPerSec', header: 'pairs/s', digits: 0 },
    { metric: 'pairP50Ms', header: 'p50 ms', digits: 3 },
    { metric: 'pairP99Ms', header: 'p99 ms', digits: 3 },
  ],
  async repetition(contenders, context, repetition) {
    const { rounds, sliceMs, warmupPairs } = context.config.uncontended;
    const clients = new Map<string, LockClient>();
    const tallies = new Map<string, Tally>();
    for (const contender of contenders) {
      clients.set(contender.id, await contender.open(context.redis.url));
      tallies.set(contender.id, { pairs: 0, busyMs: 0, latencies: [], next: 0 });
    }
    try {
      const keyOf = (contender: Contender, tally: Tally) =>
        `${context.runId}:uncontended:${contender.id}:${tally.next++ % KEY_POOL}`;
      for (const contender of contenders) {
        const client = clients.get(contender.id)!;
        const tally = tallies.get(contender.id)!;
        for (let i = 0; i < warmupPairs; i++)
          await (await client.acquire(keyOf(contender, tally)))();
      }
      for (let round = 0; round < rounds; round++) {
        const shift = (round + repetition) % contenders.length;
        for (const contender of [...contenders.slice(shift), ...contenders.slice(0, shift)]) {
          const client = clients.get(contender.id)!;
          const tally = tallies.get(contender.id)!;
          const started = nowMs();
          const end = started + sliceMs;
          let now = started;
          while (now < end) {
            const release = await client.acquire(keyOf(contender, tally));
            await release();
            const done = nowMs();
            tally.latencies.push(done - now);
            tally.pairs += 1;
            now = done;
          }
          tally.busyMs += now - started;
        }
      }
    } finally {
      for (const client of clients.values()) await client.close();
    }
    const outcomes = new Map<string, Outcome>();
    for (const contender of contenders) {
      const tally = tallies.get(contender.id)!;
      outcomes.set(contender.id, {
        metrics: {
          pairsPerSec: (tally.pairs / tally.busyMs) * 1000,
          pairP50Ms: percentile(tally.latencies, 50),
          pairP99Ms: percentile(tally.latencies, 99),
        },
      });
    }
    return outcomes;
  },
};
