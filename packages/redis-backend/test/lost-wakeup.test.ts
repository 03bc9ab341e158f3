import { startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { ReleaseWaiters } from '../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('wakes a waiter at once for a release that came while it was attempting, not listening', async () => {
  await using server = await startRedis();
  const publisher = new Redis(server.url);
  const subscriber = new Redis(server.url);
  const listeners = new Map<string, (message: string) => void>();
  subscriber.on('message', (channel, message) => listeners.get(channel)?.(message));
  const waiters = new ReleaseWaiters({
    subscribe: async (channel, onMessage) => {
      listeners.set(channel, onMessage);
      await subscriber.subscribe(channel);
    },
    unsubscribe: async (channel) => {
      await subscriber.unsubscribe(channel);
    },
  });
  try {
    // The first wait resolves once the subscription is up; the channel then lingers.
    await waiters.wait('lost', new AbortController().signal);
    const attemptStartedAt = Date.now();
    // The release lands while nobody waits (the caller is busy with its attempt). Waiting for its
    // delivery rather than a while makes sure the wait below starts after it on a slow machine too.
    const delivered = new Promise((resolve) => subscriber.once('message', resolve));
    await publisher.publish('lost', 'released');
    await delivered;
    let woken = false;
    await waiters.wait('lost', new AbortController().signal, attemptStartedAt).then(() => {
      woken = true;
    });
    expect(woken).toBe(true);
    // A wait that started after that release is not woken by it.
    const later = new AbortController();
    let spurious = false;
    const pending = waiters.wait('lost', later.signal, Date.now() + 1).then(() => {
      spurious = true;
    });
    await sleep(50);
    expect(spurious).toBe(false);
    later.abort(new Error('done'));
    await pending.catch(() => undefined);
  } finally {
    waiters.close(new Error('closed'));
    publisher.disconnect();
    subscriber.disconnect();
  }
});
