/** @module @deadbolt/cluster: deadbolt on a Redis Cluster. */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '@deadbolt/core';
import {
  clientKeyPrefix,
  type OwnedSubscriber,
  type RedisBackendOptions,
  RedisBackend,
  resolveRedisBackendOptions,
  type ScriptTransport,
} from '@deadbolt/redis-backend';

/** The slice of an ioredis `Cluster` this backend uses. */
export interface IoredisClusterClient {
  evalsha(sha: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(source: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  duplicate(
    startupNodes?: undefined,
    options?: { shardedSubscribers?: boolean },
  ): IoredisClusterSubscriber;
  /** The connections to the masters, where the eviction check runs. */
  nodes(role: 'master'): Pick<IoredisClusterClient, 'evalsha' | 'eval'>[];
  /** Read for its `keyPrefix`. */
  readonly options: object;
}

/** The slice of a duplicated ioredis `Cluster` used as the subscriber. */
export interface IoredisClusterSubscriber {
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'smessage' | 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  readonly status: string;
  disconnect(): void;
}

/** Keys and arguments as node-redis takes them for `EVAL`/`EVALSHA`. */
export interface NodeRedisClusterEvalOptions {
  keys: string[];
  arguments: string[];
}

/** The slice of a node-redis cluster (`createCluster()`, connected) this backend uses. */
export interface NodeRedisClusterClient {
  evalSha(sha: string, options: NodeRedisClusterEvalOptions): Promise<unknown>;
  eval(source: string, options: NodeRedisClusterEvalOptions): Promise<unknown>;
  duplicate(): NodeRedisClusterSubscriber;
  /** The masters, where the eviction check runs through their {@link nodeClient}s. */
  readonly masters: readonly object[];
  nodeClient(
    node: object,
  ):
    | Pick<NodeRedisClusterClient, 'evalSha' | 'eval'>
    | Promise<Pick<NodeRedisClusterClient, 'evalSha' | 'eval'>>;
  /** Read for node-redis 6's `keyPrefix` (it has no public getter; 5 has no `keyPrefix`). */
  readonly _options?: unknown;
}

/** The slice of a duplicated node-redis cluster used as the subscriber. */
export interface NodeRedisClusterSubscriber {
  connect(): Promise<unknown>;
  sSubscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  sUnsubscribe(channel: string): Promise<unknown>;
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  destroy(): unknown;
}

/** Options of {@link ClusterBackend}. */
export interface ClusterBackendOptions extends RedisBackendOptions {
  /**
   * How releases reach waiters: `'sharded'` uses `SPUBLISH`/`SSUBSCRIBE` (Redis 7+), which wakes
   * only the shard that owns the key, and falls back to classic pub/sub by itself on servers
   * without it; `'classic'` always uses `PUBLISH`/`SUBSCRIBE`, broadcast to every node.
   * @default 'sharded'
   */
  pubsub?: 'sharded' | 'classic';
}

/**
 * deadbolt on a Redis Cluster, with the same Lua scripts as a single server: every key of one
 * lock carries one hash tag, so each script runs on the shard that owns the lock, and the client
 * follows `MOVED`/`ASK` and slot migrations. Waiters are woken through sharded pub/sub on a
 * duplicate of your cluster client, opened when the first waiter needs it; `close()` closes that
 * duplicate only.
 *
 * @example
 * ```ts
 * const cluster = new Cluster([{ host: '10.0.0.1', port: 6379 }]); // ioredis
 * const locks = new LockManager({ backend: new ClusterBackend(cluster) });
 * ```
 */
export class ClusterBackend extends RedisBackend {
  /**
   * @param cluster - an ioredis `Cluster`, or a connected node-redis `createCluster()` client
   * @param options - `prefix` namespaces every key and channel; `pubsub` picks sharded or classic
   */
  constructor(
    cluster: IoredisClusterClient | NodeRedisClusterClient,
    options?: ClusterBackendOptions,
  ) {
    const { pubsub = 'sharded', ...rest } = validate(options);
    const sharded = pubsub === 'sharded';
    super(
      {
        name: 'cluster',
        publishCommand: sharded ? 'SPUBLISH' : 'PUBLISH',
        ...(isIoredisCluster(cluster)
          ? ioredisConnection(cluster, sharded)
          : nodeRedisConnection(assertNodeRedisCluster(cluster), sharded)),
      },
      resolveRedisBackendOptions(rest),
    );
  }
}

/** Runs scripts on an ioredis `Cluster`, or on one of its nodes. */
function ioredisTransport(client: Pick<IoredisClusterClient, 'evalsha' | 'eval'>): ScriptTransport {
  const run =
    (command: 'evalsha' | 'eval') =>
    (script: string, keys: readonly string[], args: readonly string[]) =>
      client[command](script, keys.length, ...keys, ...args);
  return { evalsha: run('evalsha'), eval: run('eval') };
}

function ioredisConnection(cluster: IoredisClusterClient, sharded: boolean) {
  return {
    transport: ioredisTransport(cluster),
    servers: async () => cluster.nodes('master').map(ioredisTransport),
    openSubscriber: async (): Promise<OwnedSubscriber> => {
      const subscriber = cluster.duplicate(undefined, { shardedSubscribers: sharded });
      // ioredis adds `keyPrefix` to the KEYS of EVALSHA, so releases are published on the
      // prefixed name. It adds it to the channels of SSUBSCRIBE too (Redis gives them key
      // positions, for slot routing), but not to those of SUBSCRIBE: classic subscriptions add it
      // here, and messages of both kinds arrive under the prefixed name.
      const keyPrefix = clientKeyPrefix(cluster.options);
      // Until the duplicate knows the slots, a sharded subscription can go to the wrong place:
      // commands wait for 'ready', close() does not (it must not hang on a cluster that is down).
      const ready =
        subscriber.status === 'ready'
          ? Promise.resolve()
          : new Promise<void>((resolve) => subscriber.once('ready', resolve));
      const listeners = new Map<string, (message: string) => void>();
      const dispatch = (channel: string, message: string) => listeners.get(channel)?.(message);
      // Sharded messages, and classic ones after a fallback.
      subscriber.on('smessage', dispatch);
      subscriber.on('message', dispatch);
      subscriber.on('error', () => undefined);
      return {
        ...withClassicFallback(sharded, {
          sharded: (channel) => ready.then(() => subscriber.ssubscribe(channel)),
          shardedOff: (channel) => ready.then(() => subscriber.sunsubscribe(channel)),
          classic: (channel) => ready.then(() => subscriber.subscribe(keyPrefix + channel)),
          classicOff: (channel) => ready.then(() => subscriber.unsubscribe(keyPrefix + channel)),
          listen: (channel, onMessage) => listeners.set(keyPrefix + channel, onMessage),
          forget: (channel) => listeners.delete(keyPrefix + channel),
        }),
        close: async () => subscriber.disconnect(),
      };
    },
  };
}

/** How often, and how many times, a script refused with TRYAGAIN is sent again. */
const TRY_AGAIN_DELAY_MS = 50;
const TRY_AGAIN_ATTEMPTS = 40;

/**
 * Sends again, after a pause, what the server refused with TRYAGAIN: a script's keys are split
 * between two nodes while their slot migrates, and the server refuses it before running it, so
 * sending it again is safe. ioredis does this itself (every 100 ms); node-redis hands the error
 * back, which would fail an `acquire()` that happens to run during a resharding.
 */
function retryingTryAgain(send: () => Promise<unknown>, attempt = 1): Promise<unknown> {
  return send().catch((error: unknown) => {
    const tryAgain = error instanceof Error && error.message.startsWith('TRYAGAIN');
    if (!tryAgain || attempt >= TRY_AGAIN_ATTEMPTS) throw error;
    return sleep(TRY_AGAIN_DELAY_MS).then(() => retryingTryAgain(send, attempt + 1));
  });
}

/** Runs scripts on a node-redis cluster, or on the client of one of its nodes. */
function nodeRedisTransport(
  client: Pick<NodeRedisClusterClient, 'evalSha' | 'eval'>,
): ScriptTransport {
  const run =
    (command: 'evalSha' | 'eval') =>
    (script: string, keys: readonly string[], args: readonly string[]) =>
      retryingTryAgain(() => client[command](script, { keys: [...keys], arguments: [...args] }));
  return { evalsha: run('evalSha'), eval: run('eval') };
}

function nodeRedisConnection(cluster: NodeRedisClusterClient, sharded: boolean) {
  return {
    transport: nodeRedisTransport(cluster),
    servers: () =>
      Promise.all(
        cluster.masters.map(async (master) => nodeRedisTransport(await cluster.nodeClient(master))),
      ),
    openSubscriber: async (): Promise<OwnedSubscriber> => {
      const subscriber = cluster.duplicate();
      subscriber.on('error', () => undefined);
      // node-redis 6 adds a cluster's `keyPrefix` to the KEYS of EVALSHA, so releases are
      // published on the prefixed name, but to no pub/sub channel.
      const keyPrefix = clientKeyPrefix(cluster._options);
      // Commands wait for the connection; close() does not.
      const connected = subscriber.connect();
      connected.catch(() => undefined);
      const listeners = new Map<string, (message: string) => void>();
      const dispatch = (message: string, channel: string) => listeners.get(channel)?.(message);
      return {
        ...withClassicFallback(sharded, {
          sharded: (channel) =>
            connected.then(() => subscriber.sSubscribe(keyPrefix + channel, dispatch)),
          shardedOff: (channel) =>
            connected.then(() => subscriber.sUnsubscribe(keyPrefix + channel)),
          classic: (channel) =>
            connected.then(() => subscriber.subscribe(keyPrefix + channel, dispatch)),
          classicOff: (channel) =>
            connected.then(() => subscriber.unsubscribe(keyPrefix + channel)),
          listen: (channel, onMessage) => listeners.set(keyPrefix + channel, onMessage),
          forget: (channel) => listeners.delete(keyPrefix + channel),
        }),
        close: async () => {
          subscriber.destroy();
        },
      };
    },
  };
}

/** The four subscription commands of one client, and where its messages go. */
interface SubscriptionCommands {
  sharded(channel: string): Promise<unknown>;
  shardedOff(channel: string): Promise<unknown>;
  classic(channel: string): Promise<unknown>;
  classicOff(channel: string): Promise<unknown>;
  listen(channel: string, onMessage: (message: string) => void): void;
  forget(channel: string): void;
}

/**
 * Subscribes with sharded pub/sub and switches to classic pub/sub for good when the server does
 * not know SSUBSCRIBE (before Redis 7); the scripts make the same switch from SPUBLISH to PUBLISH.
 */
function withClassicFallback(preferSharded: boolean, commands: SubscriptionCommands) {
  let sharded = preferSharded;
  const shardedChannels = new Set<string>();
  return {
    subscribe: async (channel: string, onMessage: (message: string) => void) => {
      commands.listen(channel, onMessage);
      if (sharded) {
        try {
          await commands.sharded(channel);
          shardedChannels.add(channel);
          return;
        } catch (error) {
          if (!(error instanceof Error && /unknown command/i.test(error.message))) throw error;
          sharded = false;
        }
      }
      await commands.classic(channel);
    },
    unsubscribe: async (channel: string) => {
      commands.forget(channel);
      if (shardedChannels.delete(channel)) await commands.shardedOff(channel);
      else await commands.classicOff(channel);
    },
  };
}

function validate(options: ClusterBackendOptions | undefined): ClusterBackendOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'expected an object such as { prefix, pubsub }');
  }
  if (
    options.pubsub !== undefined &&
    options.pubsub !== 'sharded' &&
    options.pubsub !== 'classic'
  ) {
    throw new InvalidArgumentError('options.pubsub', "expected 'sharded' or 'classic'");
  }
  return options;
}

function isIoredisCluster(cluster: unknown): cluster is IoredisClusterClient {
  const candidate = cluster as Record<string, unknown> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.nodes === 'function' &&
    typeof candidate.evalsha === 'function' &&
    typeof candidate.duplicate === 'function'
  );
}

function assertNodeRedisCluster(cluster: unknown): NodeRedisClusterClient {
  const candidate = cluster as Record<string, unknown> | null;
  const isCluster =
    typeof candidate === 'object' &&
    candidate !== null &&
    'masters' in candidate &&
    typeof candidate.evalSha === 'function' &&
    typeof candidate.duplicate === 'function';
  if (!isCluster) {
    throw new InvalidArgumentError(
      'cluster',
      'expected an ioredis Cluster or a node-redis createCluster() client (for a single server, use @deadbolt/ioredis or @deadbolt/node-redis)',
    );
  }
  return candidate as unknown as NodeRedisClusterClient;
}
