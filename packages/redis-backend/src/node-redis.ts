import { setTimeout as sleep } from 'node:timers/promises';
import type { OwnedSubscriber, RedisConnection } from './backend.js';
import { clientKeyPrefix } from './keys.js';
import type { LockServer } from './listing.js';
import { type EndingClient, following, type PubSubMode, withClassicFallback } from './pubsub.js';
import type { ScriptTransport } from './scripts.js';

/** Keys and arguments as node-redis takes them for `EVAL`/`EVALSHA`. */
export interface NodeRedisEvalOptions {
  keys: string[];
  arguments: string[];
}

/** The script commands of a node-redis (5 or 6) client or cluster, or of one cluster node's client. */
export interface NodeRedisScripting {
  evalSha(sha: string, options: NodeRedisEvalOptions): Promise<unknown>;
  eval(source: string, options: NodeRedisEvalOptions): Promise<unknown>;
}

/** The slice of a node-redis client (`createClient()`, connected) deadbolt uses. */
export interface NodeRedisClient extends NodeRedisScripting, EndingClient<'end'> {
  /** False once closed (or before `connect()`): no subscriber is opened then. */
  readonly isOpen: boolean;
  duplicate(): NodeRedisSubscriber;
  /** Read for node-redis 6's `keyPrefix` (5 has none). */
  readonly options?: unknown;
}

/** The slice of a duplicated node-redis client or cluster used as the subscriber. */
export interface NodeRedisSubscriber {
  connect(): Promise<unknown>;
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  readonly isOpen: boolean;
  destroy(): unknown;
}

/** A subscriber that also has sharded pub/sub: the duplicate of a node-redis cluster. */
export interface NodeRedisShardedSubscriber extends NodeRedisSubscriber {
  sSubscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  sUnsubscribe(channel: string): Promise<unknown>;
}

/** The slice of a node-redis cluster (`createCluster()`, connected) deadbolt uses. */
export interface NodeRedisClusterClient extends NodeRedisScripting, EndingClient<'disconnect'> {
  /** False once closed (or before `connect()`): no subscriber is opened then. */
  readonly isOpen: boolean;
  duplicate(): NodeRedisShardedSubscriber;
  /** The masters, which the eviction check asks and listing scans through their `nodeClient`s. */
  readonly masters: readonly NodeRedisClusterMaster[];
  nodeClient(master: NodeRedisClusterMaster): NodeRedisScripting | Promise<NodeRedisScripting>;
  /** Read for node-redis 6's `keyPrefix` (it has no public getter; 5 has no `keyPrefix`). */
  readonly _options?: unknown;
}

/** One master of a node-redis cluster, as `masters` lists it. */
export interface NodeRedisClusterMaster {
  /** `host:port` */
  readonly address: string;
}

/**
 * The {@link RedisConnection} of a node-redis client: scripts on it, and a `duplicate()` of it as
 * the subscriber.
 */
export function nodeRedisConnection(client: NodeRedisClient): RedisConnection {
  const keyPrefix = clientKeyPrefix(client.options);
  return {
    name: 'node-redis',
    transport: nodeRedisTransport(client, send),
    keyPrefix,
    openSubscriber: async (onClientEnd) => {
      assertOpen(client);
      const subscriber = nodeRedisSubscriber(client.duplicate(), keyPrefix, 'classic');
      return following(client, 'end', subscriber, onClientEnd);
    },
  };
}

/**
 * The {@link RedisConnection} of a node-redis cluster: scripts on it (it routes each by its key
 * and follows `MOVED` and `ASK`; `TRYAGAIN` is retried here), its masters for the eviction check
 * and listing, and a duplicate of it as the subscriber, with sharded pub/sub unless `pubsub` is
 * `'classic'`.
 */
export function nodeRedisClusterConnection(
  cluster: NodeRedisClusterClient,
  pubsub: PubSubMode,
): RedisConnection {
  const keyPrefix = clientKeyPrefix(cluster._options);
  return {
    name: 'cluster',
    transport: nodeRedisTransport(cluster, retryingTryAgain),
    keyPrefix,
    publishCommand: pubsub === 'sharded' ? 'SPUBLISH' : 'PUBLISH',
    servers: async (): Promise<LockServer[]> => {
      // node-redis lists its masters once connected; before, commands fail anyway.
      if (cluster.masters.length === 0) throw new Error('the cluster client is not connected');
      return Promise.all(
        cluster.masters.map(async (master) => ({
          address: master.address,
          transport: nodeRedisTransport(await cluster.nodeClient(master), retryingTryAgain),
        })),
      );
    },
    openSubscriber: async (onClientEnd) => {
      assertOpen(cluster);
      const subscriber = nodeRedisSubscriber(cluster.duplicate(), keyPrefix, pubsub);
      return following(cluster, 'disconnect', subscriber, onClientEnd);
    },
  };
}

/** A client its user closed gets no subscriber: it would stay open after the user is done. */
function assertOpen(client: { readonly isOpen: boolean }): void {
  if (!client.isOpen) throw new Error('the client is closed');
}

/** Runs scripts on a node-redis client, cluster or cluster node's client, each call through `sender`. */
function nodeRedisTransport(
  client: NodeRedisScripting,
  sender: (call: () => Promise<unknown>) => Promise<unknown>,
): ScriptTransport {
  return {
    evalsha: (sha, keys, args) =>
      sender(() => client.evalSha(sha, { keys: [...keys], arguments: [...args] })),
    eval: (source, keys, args) =>
      sender(() => client.eval(source, { keys: [...keys], arguments: [...args] })),
  };
}

const send = (call: () => Promise<unknown>) => call();

/** How often, and how many times, a script refused with TRYAGAIN is sent again. */
const TRY_AGAIN_DELAY_MS = 50;
const TRY_AGAIN_ATTEMPTS = 40;

/**
 * Sends again, after a pause, what the server refused with TRYAGAIN: a script's keys are split
 * between two nodes while their slot migrates, and the server refuses it before running it, so
 * sending it again is safe. ioredis does this itself (every 100 ms); node-redis hands the error
 * back, which would fail an `acquire()` that happens to run during a resharding.
 */
function retryingTryAgain(call: () => Promise<unknown>, attempt = 1): Promise<unknown> {
  return call().catch((error: unknown) => {
    const tryAgain = error instanceof Error && error.message.startsWith('TRYAGAIN');
    if (!tryAgain || attempt >= TRY_AGAIN_ATTEMPTS) throw error;
    return sleep(TRY_AGAIN_DELAY_MS).then(() => retryingTryAgain(call, attempt + 1));
  });
}

/**
 * The subscriber on `connection`, a duplicate of the user's client. node-redis 6 adds `keyPrefix`
 * to the KEYS of EVALSHA, so releases are published on the prefixed name of the lock, but to no
 * pub/sub channel: subscriptions add it here.
 */
function nodeRedisSubscriber(
  connection: NodeRedisSubscriber | NodeRedisShardedSubscriber,
  keyPrefix: string,
  pubsub: PubSubMode,
): OwnedSubscriber {
  // Without a listener node-redis would crash the process on a connection error; waiters see
  // failures as failed commands and the manager's backoff keeps them going.
  connection.on('error', () => undefined);
  let connecting: Promise<unknown> | undefined;
  // Commands wait for the connection. One that closed for good (its `reconnectStrategy` gave up)
  // is connected again when a waiter needs it; node-redis then restores its subscriptions itself.
  // close() waits for none of this, so it never hangs on a server that is down.
  const connected = (): Promise<unknown> => {
    if (connecting === undefined || !connection.isOpen) {
      connecting = connection.connect();
      connecting.catch(() => undefined);
    }
    return connecting;
  };
  connected();
  // A connection that is not open has nothing to undo.
  const whenOpen = async (command: () => Promise<unknown>) => {
    if (!connection.isOpen) return;
    await connecting;
    await command();
  };
  const listener = (onMessage: (message: string) => void) => (message: string) =>
    onMessage(String(message));
  // Only a cluster's duplicate, which has them, is asked for sharded subscriptions.
  const sharded = connection as NodeRedisShardedSubscriber;
  return {
    ...withClassicFallback(pubsub, {
      sharded: (channel, onMessage) =>
        connected().then(() => sharded.sSubscribe(keyPrefix + channel, listener(onMessage))),
      shardedOff: (channel) => whenOpen(() => sharded.sUnsubscribe(keyPrefix + channel)),
      classic: (channel, onMessage) =>
        connected().then(() => connection.subscribe(keyPrefix + channel, listener(onMessage))),
      classicOff: (channel) => whenOpen(() => connection.unsubscribe(keyPrefix + channel)),
    }),
    close: async () => {
      if (connection.isOpen) connection.destroy();
    },
  };
}
