import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { nowMs } from '../clock.js';
import type { Release } from '../contenders/index.js';
import { percentile } from '../stats.js';
import type { Outcome, Scenario } from './types.js';

/**
 * PING round trip on a fresh ioredis connection, p50: back to back (`count` pings), and after a
 * pause like the holder's (`paused` pings), when both processes have gone idle and must wake up,
 * as they must for a handoff.
 */
async function pingRttMs(
  redisUrl: string,
  count: number,
  paused: number,
  pause: () => number,
): Promise<{ hot: number; idle: number }> {
  const redis = new Redis(redisUrl);
  const time = async () => {
    const started = nowMs();
    await redis.ping();
    return nowMs() - started;
  };
  try {
    for (let i = 0; i < 20; i++) await redis.ping();
    const hot: number[] = [];
    for (let i = 0; i < count; i++) hot.push(await time());
    const idle: number[] = [];
    for (let i = 0; i < paused; i++) {
      await sleep(pause());
      idle.push(await time());
    }
    return { hot: percentile(hot, 50), idle: percentile(idle, 50) };
  } finally {
    await redis.quit();
  }
}

/**
 * Scenario 4: how soon a waiter in another client gets a lock its holder just released.
 * Holder A (one client) holds the key; waiter B (a second client, own connections) calls
 * acquire() and settles into waiting; after a random pause A releases. Handoff is the time from
 * A's release() resolving to B's acquire() resolving. PING is timed in the same repetition, and
 * handoff is also given in round trips.
 */
export const handoff: Scenario = {
  id: 'handoff',
  title: '4. Release-to-wake handoff between two clients',
  description:
    "Holder and waiter are separate clients (separate connections). Handoff = from the holder's release() " +
    "resolving to the waiter's acquire() resolving; the holder releases after a random pause so pollers are " +
    'caught at any phase. RTT = p50 of back-to-back PINGs on ioredis in the same repetition; handoff in RTTs ' +
    'is p50 (p99) over it. PING after pause: p50 of PINGs sent after the same random pause, when client and ' +
    'server must first wake up, as in a handoff.',
  columns: [
    { metric: 'handoffP50Ms', header: 'handoff p50 ms', digits: 2 },
    { metric: 'handoffP99Ms', header: 'handoff p99 ms', digits: 2 },
    { metric: 'handoffP50Rtts', header: 'p50 in RTTs', digits: 1 },
    { metric: 'handoffP99Rtts', header: 'p99 in RTTs', digits: 1 },
    { metric: 'pingRttMs', header: 'PING RTT ms', digits: 3 },
    { metric: 'idlePingRttMs', header: 'PING after pause ms', digits: 3 },
    { metric: 'failures', header: 'failures', digits: 0 },
  ],
  async repetition(contenders, context, repetition) {
    const { samples, holdMinMs, holdMaxMs, pings } = context.config.handoff;
    const pause = () => holdMinMs + Math.random() * (holdMaxMs - holdMinMs);
    const { hot: rtt, idle: idleRtt } = await pingRttMs(context.redis.url, pings, samples, pause);
    const outcomes = new Map<string, Outcome>();
    for (const contender of contenders) {
      const holder = await contender.open(context.redis.url);
      const waiter = await contender.open(context.redis.url);
      const prefix = `${context.runId}:handoff:${contender.id}:${repetition}`;
      const handoffs: number[] = [];
      let failures = 0;
      try {
        await (await holder.acquire(`${prefix}:warm`))();
        await (await waiter.acquire(`${prefix}:warm`))();
        for (let sample = 0; sample < samples; sample++) {
          const key = `${prefix}:${sample}`;
          const releaseHolder = await holder.acquire(key);
          let grantedAt = Number.NaN;
          const waiting = waiter.acquire(key).then(
            (release): Release | undefined => {
              grantedAt = nowMs();
              return release;
            },
            () => undefined,
          );
          await sleep(pause());
          await releaseHolder();
          const releasedAt = nowMs();
          const releaseWaiter = await waiting;
          if (releaseWaiter === undefined) {
            failures += 1;
            continue;
          }
          handoffs.push(grantedAt - releasedAt);
          await releaseWaiter();
        }
      } finally {
        await holder.close();
        await waiter.close();
      }
      const p50 = percentile(handoffs, 50);
      const p99 = percentile(handoffs, 99);
      const inRtts = contender.usesRedis;
      outcomes.set(contender.id, {
        metrics: {
          handoffP50Ms: p50,
          handoffP99Ms: p99,
          handoffP50Rtts: inRtts ? p50 / rtt : Number.NaN,
          handoffP99Rtts: inRtts ? p99 / rtt : Number.NaN,
          pingRttMs: rtt,
          idlePingRttMs: idleRtt,
          failures,
        },
      });
    }
    return outcomes;
  },
};
