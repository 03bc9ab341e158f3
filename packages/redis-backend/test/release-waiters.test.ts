import { getEventListeners } from 'node:events';
import { BackendError } from '@deadbolt/core';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend, type ReleaseSubscriber, ReleaseWaiters } from '../src/index.js';
import { eventually, mutex, sleep, subscriberOf, transportOf, unique } from './helpers.js';

let server: RedisServer;
let client: Redis;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.url);
  client.on('error', () => undefined);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

afterAll(async () => {
  client?.disconnect();
  await server?.stop();
});

/** Subscribers of `channel` on the server. */
const numsub = async (channel: string) => (await client.pubsub('NUMSUB', channel))[1];

/** A real subscriber connection, closed after the test, that records the calls it gets. */
function recordingSubscriber(
  options: { delayMs?: number; unsubscribeDelayMs?: number; failFirst?: number } = {},
) {
  const inner = subscriberOf(client);
  cleanups.push(async () => (await inner).close());
  const calls: string[] = [];
  let failures = options.failFirst ?? 0;
  const subscriber: ReleaseSubscriber = {
    subscribe: async (channel, onMessage) => {
      calls.push(`subscribe ${channel}`);
      await sleep(options.delayMs ?? 0);
      if (failures-- > 0) throw new Error('subscribe failed');
      await (await inner).subscribe(channel, onMessage);
    },
    unsubscribe: async (channel) => {
      calls.push(`unsubscribe ${channel}`);
      await sleep(options.unsubscribeDelayMs ?? options.delayMs ?? 0);
      await (await inner).unsubscribe(channel);
    },
  };
  return { subscriber, calls };
}

const never = () => new AbortController().signal;

describe('ReleaseWaiters', () => {
  it('wakes a new waiter once the subscription is in place, for a release it may have missed', async () => {
    const channel = unique('first');
    const { subscriber, calls } = recordingSubscriber();
    const waiters = new ReleaseWaiters(subscriber);
    await waiters.wait(channel, never());
    expect(calls).toEqual([`subscribe ${channel}`]);
    expect(await numsub(channel)).toBe(1);
  });

  it('gives a grant to the waiter of its token and attempt only, and keeps one that came for nobody', async () => {
    const channel = unique('grant');
    const { subscriber } = recordingSubscriber();
    const waiters = new ReleaseWaiters(subscriber);
    await waiters.wait(channel, never());
    const state = { other: 'pending', plain: 'pending' };
    const grantee = waiters.wait(channel, never(), undefined, { token: 'a b', attempt: 2 });
    void waiters.wait(channel, never(), undefined, { token: 'other', attempt: 1 }).then(() => {
      state.other = 'woken';
    });
    void waiters.wait(channel, never()).then(() => {
      state.plain = 'woken';
    });
    await sleep(20);
    // A grant for an earlier attempt of the same token is stale: its waiter does not take it.
    await client.publish(channel, 'granted 16 5000 3 1 a b');
    await client.publish(channel, 'granted 17 5000 3 2 a b');
    expect(await grantee).toEqual({ ok: true, fence: 17, ttlMs: 5_000, afterMs: 3, attempt: 2 });
    await sleep(50);
    // For the others the lock is as taken as before: nobody else woke.
    expect(state).toEqual({ other: 'pending', plain: 'pending' });
    // A grant for a token that is not listening waits for it.
    await client.publish(channel, 'granted 18 5000 0 1 later');
    await sleep(50);
    expect(
      await waiters.wait(channel, never(), undefined, { token: 'later', attempt: 1 }),
    ).toMatchObject({ fence: 18 });
    // Anything else is a release for all of them.
    await client.publish(channel, 'released');
    await eventually(
      'every waiter woke',
      async () => state.other === 'woken' && state.plain === 'woken',
    );
  });

  it('subscribes a channel once for all its waiters, lingers, then unsubscribes', async () => {
    const channel = unique('rw');
    const { subscriber, calls } = recordingSubscriber();
    const waiters = new ReleaseWaiters(subscriber, { lingerMs: 200 });
    await waiters.wait(channel, never());
    // The channel lingers: these two wait for a message on the one subscription.
    const aborting = new AbortController();
    const first = waiters.wait(channel, never());
    const second = waiters.wait(channel, aborting.signal);
    await sleep(20);
    expect(waiters.channelCount).toBe(1);
    aborting.abort(new Error('gone'));
    await expect(second).rejects.toThrow('gone');
    expect(await numsub(channel)).toBe(1);
    await client.publish(channel, 'released');
    await first;
    expect(waiters.channelCount).toBe(1);
    await eventually('unsubscribed', async () => (await numsub(channel)) === 0);
    expect(waiters.channelCount).toBe(0);
    expect(calls).toEqual([`subscribe ${channel}`, `unsubscribe ${channel}`]);
  });

  it('unsubscribes as soon as the last waiter leaves with lingerMs 0', async () => {
    const channel = unique('no-linger');
    const { subscriber, calls } = recordingSubscriber();
    const waiters = new ReleaseWaiters(subscriber, { lingerMs: 0 });
    await waiters.wait(channel, never());
    expect(waiters.channelCount).toBe(0);
    await eventually('unsubscribed', async () => (await numsub(channel)) === 0);
    expect(calls).toEqual([`subscribe ${channel}`, `unsubscribe ${channel}`]);
  });

  it('listens once to a signal that many waits share; a woken wait ignores its later abort', async () => {
    const channel = unique('shared-signal');
    const waiters = new ReleaseWaiters(recordingSubscriber().subscriber);
    await waiters.wait(channel, never());
    const shutdown = new AbortController();
    const outcomes: string[] = [];
    const waits = Array.from({ length: 20 }, () =>
      waiters.wait(channel, shutdown.signal).then(
        () => outcomes.push('woken'),
        (error: Error) => outcomes.push(error.message),
      ),
    );
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    await client.publish(channel, 'released');
    await Promise.all(waits);
    const later = waiters.wait(channel, shutdown.signal).catch((error: Error) => error.message);
    shutdown.abort(new Error('shutting down'));
    expect(await later).toBe('shutting down');
    expect(outcomes).toEqual(Array(20).fill('woken'));
  });

  it('wakes every waiter of the released channel and no other', async () => {
    const [released, other] = [unique('released'), unique('other')];
    const waiters = new ReleaseWaiters(recordingSubscriber().subscriber);
    await Promise.all([waiters.wait(released, never()), waiters.wait(other, never())]);
    const woken: string[] = [];
    const watch = (channel: string, name: string, signal: AbortSignal) =>
      waiters.wait(channel, signal).then(
        () => woken.push(name),
        () => undefined,
      );
    const stop = new AbortController();
    const all = [
      watch(released, 'a', never()),
      watch(released, 'b', never()),
      watch(other, 'c', stop.signal),
    ];
    await client.publish(released, 'released');
    await eventually('woken', async () => woken.length === 2);
    await sleep(30);
    expect(woken.sort()).toEqual(['a', 'b']);
    stop.abort();
    await Promise.all(all);
  });

  it('never lets a late unsubscribe undo the subscription of a waiter that just arrived', async () => {
    const channel = unique('quick');
    // Calls take a while, as on a slow network, so a new waiter can arrive while the unsubscribe
    // of the channel's previous subscription is still on its way, and its subscribe is quicker.
    const { subscriber, calls } = recordingSubscriber({ delayMs: 5, unsubscribeDelayMs: 60 });
    const waiters = new ReleaseWaiters(subscriber, { lingerMs: 10 });
    await waiters.wait(channel, never());
    await eventually('unsubscribing', async () => calls.length === 2);
    await waiters.wait(channel, never());
    const waiting = waiters.wait(channel, never());
    // Long enough for any unsubscribe still in flight to have landed.
    await sleep(100);
    expect(calls).toEqual([
      `subscribe ${channel}`,
      `unsubscribe ${channel}`,
      `subscribe ${channel}`,
    ]);
    expect(await numsub(channel)).toBe(1);
    await client.publish(channel, 'released');
    await waiting;
  });

  it('rejects the waiters of a channel whose subscribe failed; a later waiter tries again', async () => {
    const channel = unique('fails');
    const { subscriber, calls } = recordingSubscriber({ failFirst: 1 });
    const waiters = new ReleaseWaiters(subscriber);
    const both = [waiters.wait(channel, never()), waiters.wait(channel, never())];
    for (const waiter of both) await expect(waiter).rejects.toThrow('subscribe failed');
    expect(waiters.channelCount).toBe(0);
    await waiters.wait(channel, never());
    expect(await numsub(channel)).toBe(1);
    expect(calls).toEqual([`subscribe ${channel}`, `subscribe ${channel}`]);
  });

  it('settles an abort while subscribing, then unsubscribes', async () => {
    const channel = unique('early-abort');
    const { subscriber, calls } = recordingSubscriber({ delayMs: 50 });
    const waiters = new ReleaseWaiters(subscriber, { lingerMs: 0 });
    const controller = new AbortController();
    const waiting = waiters.wait(channel, controller.signal);
    controller.abort(new Error('changed my mind'));
    await expect(waiting).rejects.toThrow('changed my mind');
    await eventually('unsubscribed', async () => calls.length === 2);
    await eventually('unsubscribed', async () => (await numsub(channel)) === 0);
    expect(calls).toEqual([`subscribe ${channel}`, `unsubscribe ${channel}`]);
    // An aborted signal never subscribes at all.
    await expect(waiters.wait(channel, AbortSignal.abort(new Error('no')))).rejects.toThrow('no');
    expect(calls).toHaveLength(2);
  });

  it('close rejects every waiter, now and later, without touching the subscriptions', async () => {
    const { subscriber, calls } = recordingSubscriber();
    const waiters = new ReleaseWaiters(subscriber);
    const [a, b] = [unique('a'), unique('b')];
    await Promise.all([waiters.wait(a, never()), waiters.wait(b, never())]);
    const pending = [a, b, b].map((channel) => waiters.wait(channel, never()));
    waiters.close(new Error('closed'));
    for (const waiter of pending) await expect(waiter).rejects.toThrow('closed');
    expect(waiters.channelCount).toBe(0);
    await expect(waiters.wait(unique('c'), never())).rejects.toThrow('closed');
    await sleep(30);
    expect(calls.filter((call) => call.startsWith('unsubscribe'))).toEqual([]);
  });
});

describe('RedisBackend waiting', () => {
  /** A backend that counts the subscriber connections it opens. */
  function countingBackend() {
    const opened = { count: 0 };
    const backend = new RedisBackend(
      {
        name: 'test',
        transport: transportOf(client),
        openSubscriber: async () => {
          opened.count++;
          const subscriber = await subscriberOf(client);
          cleanups.push(() => subscriber.close());
          return subscriber;
        },
      },
      { prefix: 'waiting', evictionCheck: 'off' },
    );
    cleanups.push(() => backend.close());
    return { backend, opened };
  }

  it('wakes a waiter when the holder releases, over one lazily opened connection', async () => {
    const { backend, opened } = countingBackend();
    const key = unique('wake');
    await backend.acquire(mutex(key, 'holder'));
    expect(opened.count).toBe(0);
    // The first wait ends when the subscription is up; the channel then lingers for the next.
    await backend.wakeUps.waitForRelease({ key: key, signal: never() });
    const waits = [
      backend.wakeUps.waitForRelease({ key: key, signal: never() }),
      backend.wakeUps.waitForRelease({ key: key, signal: never() }),
    ];
    await backend.release({ key, token: 'holder' });
    await Promise.all(waits);
    expect(opened.count).toBe(1);
  });

  it('closing rejects waiters with BackendError and opens nothing new', async () => {
    const { backend, opened } = countingBackend();
    const key = unique('close');
    const controller = new AbortController();
    await backend.wakeUps.waitForRelease({ key: key, signal: never() });
    const waiting = backend.wakeUps.waitForRelease({ key: key, signal: never() });
    const aborted = backend.wakeUps.waitForRelease({
      key: unique('close'),
      signal: controller.signal,
    });
    await backend.close();
    await expect(waiting).rejects.toBeInstanceOf(BackendError);
    await expect(aborted).rejects.toThrow(/closed/);
    controller.abort();
    await expect(backend.wakeUps.waitForRelease({ key: key, signal: never() })).rejects.toThrow(
      /closed/,
    );
    await expect(backend.acquire(mutex(key, 't'))).rejects.toThrow(/closed/);
    await sleep(50);
    expect(opened.count).toBe(1);
  });

  it('hands the abort reason back unwrapped', async () => {
    const { backend } = countingBackend();
    const reason = new Error('stop waiting');
    await expect(
      backend.wakeUps.waitForRelease({ key: unique('k'), signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });
});
