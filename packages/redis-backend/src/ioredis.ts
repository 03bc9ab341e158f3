import type { OwnedSubscriber, RedisConnection } from './backend.js';
import { clientKeyPrefix } from './keys.js';
import type { LockServer } from './listing.js';
import { type EndingClient, following, type PubSubMode, withClassicFallback } from './pubsub.js';
import type { ScriptTransport } from './scripts.js';

/** The script commands of an ioredis `Redis` or `Cluster`, or of one node of a `Cluster`. */
export interface IoredisScripting {
  evalsha(sha: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(source: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
}

/** How an ioredis `Redis` or `Cluster` tells whether it is ready, and connects. */
export interface IoredisConnectable {
  readonly status: string;
  once(event: 'ready', listener: () => void): unknown;
  connect(): Promise<unknown>;
}

/** The slice of an ioredis `Redis` client deadbolt uses. */
export interface IoredisClient extends IoredisScripting, EndingClient<'end'> {
  /** `'end'` once closed: no subscriber is opened then. */
  readonly status: string;
  duplicate(): IoredisSubscriber;
  /** Read for its `keyPrefix`. */
  readonly options: object;
}

/** The slice of a duplicated ioredis `Redis` or `Cluster` used as the subscriber. */
export interface IoredisSubscriber extends IoredisConnectable {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message' | 'smessage', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  disconnect(): void;
}

/** A subscriber that also has sharded pub/sub: the duplicate of an ioredis `Cluster`. */
export interface IoredisShardedSubscriber extends IoredisSubscriber {
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
}

/** The slice of an ioredis `Cluster` deadbolt uses. */
export interface IoredisClusterClient
  extends IoredisScripting,
    IoredisConnectable,
    EndingClient<'end'> {
  duplicate(
    startupNodes?: undefined,
    options?: { shardedSubscribers?: boolean },
  ): IoredisShardedSubscriber;
  /** The connections to the masters, which the eviction check asks and listing scans. */
  nodes(role: 'master'): IoredisClusterNode[];
  /** Read for its `keyPrefix`. */
  readonly options: object;
}

/** One master of an ioredis `Cluster`, as `nodes('master')` gives it. */
export interface IoredisClusterNode extends IoredisScripting {
  readonly options: { readonly host?: string | undefined; readonly port?: number | undefined };
}

/**
 * The {@link RedisConnection} of an ioredis `Redis` client: scripts on it, and a `duplicate()` of
 * it as the subscriber.
 */
export function ioredisConnection(client: IoredisClient): RedisConnection {
  const keyPrefix = clientKeyPrefix(client.options);
  return {
    name: 'ioredis',
    transport: ioredisTransport(client),
    keyPrefix,
    openSubscriber: async (onClientEnd) => {
      assertNotEnded(client);
      const subscriber = ioredisSubscriber(client.duplicate(), keyPrefix, 'classic');
      return following(client, 'end', subscriber, onClientEnd);
    },
  };
}

/**
 * The {@link RedisConnection} of an ioredis `Cluster`: scripts on it (it routes each by its key
 * and follows `MOVED`, `ASK` and `TRYAGAIN` itself), its masters for the eviction check and
 * listing, and a duplicate of it as the subscriber, with sharded pub/sub unless `pubsub` is
 * `'classic'`.
 */
export function ioredisClusterConnection(
  cluster: IoredisClusterClient,
  pubsub: PubSubMode,
): RedisConnection {
  const keyPrefix = clientKeyPrefix(cluster.options);
  const ready = readiness(cluster, { connectWhenEnded: false });
  return {
    name: 'cluster',
    transport: ioredisTransport(cluster),
    keyPrefix,
    publishCommand: pubsub === 'sharded' ? 'SPUBLISH' : 'PUBLISH',
    servers: async (): Promise<LockServer[]> => {
      // Until it is ready, a cluster client knows no masters (or only its startup nodes).
      await ready();
      return cluster.nodes('master').map((node) => ({
        address: `${node.options.host}:${node.options.port}`,
        transport: ioredisTransport(node),
      }));
    },
    openSubscriber: async (onClientEnd) => {
      assertNotEnded(cluster);
      const subscriber = ioredisSubscriber(
        cluster.duplicate(undefined, { shardedSubscribers: pubsub === 'sharded' }),
        keyPrefix,
        pubsub,
      );
      return following(cluster, 'end', subscriber, onClientEnd);
    },
  };
}

/** A client its user closed gets no subscriber: it would stay open after the user is done. */
function assertNotEnded(client: { readonly status: string }): void {
  if (client.status === 'end') throw new Error('the client is closed');
}

/** Runs scripts on an ioredis `Redis`, `Cluster` or cluster node. */
function ioredisTransport(client: IoredisScripting): ScriptTransport {
  return {
    evalsha: (sha, keys, args) => client.evalsha(sha, keys.length, ...keys, ...args),
    eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
  };
}

/**
 * The subscriber on `connection`, a duplicate of the user's client. ioredis adds `keyPrefix` to
 * the KEYS of EVALSHA, so releases are published on the prefixed name of the lock. It adds it to
 * the channels of SSUBSCRIBE too (Redis gives them key positions, for slot routing), but not to
 * those of SUBSCRIBE: classic subscriptions add it here, and messages of both kinds arrive under
 * the prefixed name.
 */
function ioredisSubscriber(
  connection: IoredisSubscriber | IoredisShardedSubscriber,
  keyPrefix: string,
  pubsub: PubSubMode,
): OwnedSubscriber {
  const listeners = new Map<string, (message: string) => void>();
  const dispatch = (channel: string, message: string) => listeners.get(channel)?.(message);
  // Sharded messages, and classic ones (also after a fallback from sharded).
  connection.on('smessage', dispatch);
  connection.on('message', dispatch);
  // Without a listener ioredis would print connection errors; waiters see them as failed commands.
  connection.on('error', () => undefined);
  const ready = readiness(connection, { connectWhenEnded: true });
  // A connection that is not open has nothing to undo.
  const idle = () => connection.status === 'wait' || connection.status === 'end';
  // Only a cluster's duplicate, which has them, is asked for sharded subscriptions.
  const sharded = connection as IoredisShardedSubscriber;
  return {
    ...withClassicFallback(pubsub, {
      sharded: async (channel, onMessage) => {
        listeners.set(keyPrefix + channel, onMessage);
        await ready();
        await sharded.ssubscribe(channel);
      },
      shardedOff: async (channel) => {
        listeners.delete(keyPrefix + channel);
        if (idle()) return;
        await ready();
        await sharded.sunsubscribe(channel);
      },
      classic: async (channel, onMessage) => {
        listeners.set(keyPrefix + channel, onMessage);
        await ready();
        await connection.subscribe(keyPrefix + channel);
      },
      classicOff: async (channel) => {
        listeners.delete(keyPrefix + channel);
        if (idle()) return;
        await ready();
        await connection.unsubscribe(keyPrefix + channel);
      },
    }),
    close: async () => connection.disconnect(),
  };
}

/**
 * Waits until `connection` is ready, for commands that must not go out before: a SUBSCRIBE sent
 * during the startup check can leave the connection stuck (ioredis#2037), and a cluster client
 * routes sharded subscriptions and lists its masters only once it knows the slots. An idle
 * connection (a `lazyConnect` client, or its duplicate) is connected first, and so is one whose
 * retry strategy gave up, when `connectWhenEnded` (the backend's own subscriber; the user's client
 * that ended was closed by its user, and is refused); ioredis then restores a subscriber's
 * subscriptions itself. `close()` waits for none of this, so it never hangs on a server that is down.
 */
function readiness(
  connection: IoredisConnectable,
  { connectWhenEnded }: { connectWhenEnded: boolean },
): () => Promise<void> {
  let ready: Promise<void> | undefined;
  return () => {
    if (connection.status === 'ready') return Promise.resolve();
    if (connection.status === 'end' && !connectWhenEnded) {
      return Promise.reject(new Error('the client is closed'));
    }
    if (connection.status === 'wait' || connection.status === 'end') {
      connection.connect().catch(() => undefined);
    }
    ready ??= new Promise((resolve) => {
      connection.once('ready', () => {
        ready = undefined;
        resolve();
      });
    });
    return ready;
  };
}
