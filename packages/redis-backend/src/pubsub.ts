import { InvalidArgumentError } from '@deadbolt/core';
import type { OwnedSubscriber } from './backend.js';
import type { ReleaseSubscriber } from './release-waiters.js';

/**
 * How releases reach waiters on a Cluster: `'sharded'` uses `SPUBLISH`/`SSUBSCRIBE` (Redis 7+),
 * which wakes only the shard that owns the key; `'classic'` uses `PUBLISH`/`SUBSCRIBE`, broadcast
 * to every node. A single server always uses classic pub/sub.
 */
export type PubSubMode = 'sharded' | 'classic';

/**
 * Splits the `pubsub` option of a cluster-capable backend from the rest of its options, refusing
 * anything but `'sharded'` or `'classic'` before a connection is touched.
 * @returns the mode (`'sharded'` when unset) and the remaining options, for
 *   `resolveRedisBackendOptions`
 */
export function takePubSubOption<Options extends { pubsub?: PubSubMode }>(
  options: Options | undefined,
): { pubsub: PubSubMode; rest: Omit<Options, 'pubsub'> | undefined } {
  if (options === undefined) return { pubsub: 'sharded', rest: undefined };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError('options', 'expected an object such as { prefix, pubsub }');
  }
  const { pubsub = 'sharded', ...rest } = options;
  if (pubsub !== 'sharded' && pubsub !== 'classic') {
    throw new InvalidArgumentError('options.pubsub', "expected 'sharded' or 'classic'");
  }
  return { pubsub, rest };
}

/** One subscriber connection's commands of both kinds, each taking the listener of its channel. */
export interface SubscriptionCommands {
  sharded(channel: string, onMessage: (message: string) => void): Promise<unknown>;
  shardedOff(channel: string): Promise<unknown>;
  classic(channel: string, onMessage: (message: string) => void): Promise<unknown>;
  classicOff(channel: string): Promise<unknown>;
}

/**
 * Subscribes with sharded pub/sub and switches to classic pub/sub for good when the server does
 * not know SSUBSCRIBE (before Redis 7); the scripts make the same switch from SPUBLISH to PUBLISH.
 * With `mode` `'classic'`, only classic pub/sub is used.
 */
export function withClassicFallback(
  mode: PubSubMode,
  commands: SubscriptionCommands,
): ReleaseSubscriber {
  let sharded = mode === 'sharded';
  const shardedChannels = new Set<string>();
  return {
    subscribe: async (channel, onMessage) => {
      if (sharded) {
        try {
          await commands.sharded(channel, onMessage);
          shardedChannels.add(channel);
          return;
        } catch (error) {
          if (!(error instanceof Error && /unknown command/i.test(error.message))) throw error;
          sharded = false;
        }
      }
      await commands.classic(channel, onMessage);
    },
    unsubscribe: async (channel) => {
      if (shardedChannels.delete(channel)) await commands.shardedOff(channel);
      else await commands.classicOff(channel);
    },
  };
}

/** A user's client that says when it ends for good: ioredis and node-redis emit `'end'`, a node-redis cluster `'disconnect'`. */
export interface EndingClient<Event extends string> {
  on(event: Event, listener: () => void): unknown;
  off(event: Event, listener: () => void): unknown;
}

/**
 * `subscriber`, made to follow the user's `client`: `onEnd` runs once when the client emits
 * `event` (it ended), until the subscriber is closed. The backend then closes the subscriber, so a
 * process whose user closed their client can exit.
 */
export function following<Event extends string>(
  client: EndingClient<Event>,
  event: Event,
  subscriber: OwnedSubscriber,
  onEnd: () => void,
): OwnedSubscriber {
  const ended = () => {
    client.off(event, ended);
    onEnd();
  };
  client.on(event, ended);
  return {
    ...subscriber,
    close: async () => {
      client.off(event, ended);
      await subscriber.close();
    },
  };
}
