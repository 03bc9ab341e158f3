/** @module @deadbolt/cluster: deadbolt on a Redis Cluster. */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  type OwnedSubscriber,
  type RedisBackendOptions,
  RedisScriptBackend,
  resolveRedisBackendOptions,
} from '@deadbolt/redis-scripts';

/** The slice of an ioredis `Cluster` this backend uses. */
export interface IoredisClusterClient {
  evalsha(sha: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(source: string, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  duplicate(
    startupNodes?: undefined,
    options?: { shardedSubscribers?: boolean },
  ): IoredisClusterSubscriber;
  nodes(): unknown[];
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
  readonly masters: unknown;
}

/** The slice of a duplicated node-redis cluster used as the subscriber. */
export interface NodeRedisClusterSubscriber {
  connect(): Promise<unknown>;
  sSubscribe(channel: string, listener: () => void): Promise<unknown>;
  sUnsubscribe(channel: string): Promise<unknown>;
  subscribe(channel: string, listener: () => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  destroy(): unknown;
}

/** Options of {@link ClusterBackend}. */
export interface ClusterBackendOptions extends RedisBackendOptions {
  /**
   * How releases reach waiters: `'sharded'` (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+) wakes only the
   * shard that owns the key; `'classic'` (`PUBLISH`/`SUBSCRIBE`) works on older servers but every
   * release is broadcast to every node.
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
export class ClusterBackend extends RedisScriptBackend {
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

function ioredisConnection(cluster: IoredisClusterClient, sharded: boolean) {
  const run =
    (command: 'evalsha' | 'eval') =>
    (script: string, keys: readonly string[], args: readonly string[]) =>
      cluster[command](script, keys.length, ...keys, ...args);
  return {
    transport: { evalsha: run('evalsha'), eval: run('eval') },
    openSubscriber: async (): Promise<OwnedSubscriber> => {
      const subscriber = cluster.duplicate(undefined, { shardedSubscribers: sharded });
      // Until the duplicate knows the slots, a sharded subscription can go to the wrong place.
      if (subscriber.status !== 'ready') {
        await new Promise<void>((resolve) => subscriber.once('ready', resolve));
      }
      const listeners = new Map<string, () => void>();
      subscriber.on(sharded ? 'smessage' : 'message', (channel) => listeners.get(channel)?.());
      subscriber.on('error', () => undefined);
      return {
        subscribe: async (channel, onMessage) => {
          listeners.set(channel, onMessage);
          await (sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel));
        },
        unsubscribe: async (channel) => {
          listeners.delete(channel);
          await (sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel));
        },
        close: async () => subscriber.disconnect(),
      };
    },
  };
}

function nodeRedisConnection(cluster: NodeRedisClusterClient, sharded: boolean) {
  const run =
    (command: 'evalSha' | 'eval') =>
    (script: string, keys: readonly string[], args: readonly string[]) =>
      cluster[command](script, { keys: [...keys], arguments: [...args] });
  return {
    transport: { evalsha: run('evalSha'), eval: run('eval') },
    openSubscriber: async (): Promise<OwnedSubscriber> => {
      const subscriber = cluster.duplicate();
      subscriber.on('error', () => undefined);
      await subscriber.connect();
      return {
        subscribe: async (channel, onMessage) => {
          await (sharded
            ? subscriber.sSubscribe(channel, onMessage)
            : subscriber.subscribe(channel, onMessage));
        },
        unsubscribe: async (channel) => {
          await (sharded ? subscriber.sUnsubscribe(channel) : subscriber.unsubscribe(channel));
        },
        close: async () => {
          subscriber.destroy();
        },
      };
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
