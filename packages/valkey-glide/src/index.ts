/** @module @deadbolt/valkey-glide: deadbolt on a Valkey GLIDE client, standalone or cluster. */
import { InvalidArgumentError } from '@deadbolt/core';
import {
  type LockServer,
  type OwnedSubscriber,
  type PubSubMode,
  RedisBackend,
  type RedisBackendOptions,
  type RedisConnection,
  resolveRedisBackendOptions,
  type ScriptTransport,
  takePubSubOption,
  withClassicFallback,
} from '@deadbolt/redis-backend';
import type {
  GlideClient,
  GlideClientConfiguration,
  GlideClusterClient,
  GlideClusterClientConfiguration,
  GlideString,
  PubSubMsg,
} from '@valkey/valkey-glide';

export type { PubSubMode } from '@deadbolt/redis-backend';

/** Options of {@link GlideBackend}. */
export interface GlideBackendOptions extends RedisBackendOptions {
  /**
   * How releases reach waiters on a `GlideClusterClient`: `'sharded'` uses
   * `SPUBLISH`/`SSUBSCRIBE` (Redis and Valkey 7+), which wakes only the shard that owns the key,
   * and falls back to classic pub/sub where SSUBSCRIBE fails as an unknown command; `'classic'`
   * always uses `PUBLISH`/`SUBSCRIBE`, broadcast to every node (pass it on servers before 7). A `GlideClient` always uses classic pub/sub.
   * @default 'sharded'
   */
  pubsub?: PubSubMode;
}

/**
 * How long a SUBSCRIBE waits for the server's confirmation. A first wait resolves once its
 * subscription is in place; while the server is down it fails after this, and the manager's
 * backoff carries the waiter on.
 */
const SUBSCRIBE_TIMEOUT_MS = 10_000;

/**
 * deadbolt on your Valkey GLIDE 2.3+ client, `GlideClient` (standalone) or `GlideClusterClient`:
 * the shared Lua scripts for leases and fences, run with `EVALSHA` through `customCommand`, and
 * one dedicated subscriber client for release wake-ups, created from your client's configuration
 * when the first waiter needs it (GLIDE delivers messages to a callback fixed at creation, so a
 * client of its own receives them). `close()` closes that subscriber only, never your client.
 *
 * @example
 * ```ts
 * import { GlideClient } from '@valkey/valkey-glide';
 * const client = await GlideClient.createClient({ addresses: [{ host: 'localhost', port: 6379 }] });
 * const locks = new LockManager({ backend: new GlideBackend(client) });
 * ```
 */
export class GlideBackend extends RedisBackend {
  /**
   * @param client - a `GlideClient` or a `GlideClusterClient` from `@valkey/valkey-glide` 2.3 or later
   * @param options - `prefix` namespaces every key and channel; `pubsub` picks sharded or classic
   *   pub/sub on a cluster
   */
  constructor(client: GlideClient | GlideClusterClient, options?: GlideBackendOptions) {
    const glide = assertGlideClient(client);
    const { pubsub, rest } = takePubSubOption(options);
    super(
      glide.cluster ? glideClusterConnection(glide, pubsub) : glideConnection(glide),
      resolveRedisBackendOptions(rest),
    );
  }
}

/** The configuration a GLIDE client was created with, whichever kind it is. */
type GlideConfiguration = GlideClientConfiguration | GlideClusterClientConfiguration;

/** What the backend uses of a GLIDE client of either kind. */
interface GlideCommands {
  customCommand(args: GlideString[], options?: object): Promise<unknown>;
  subscribe(channels: Iterable<GlideString>, timeoutMs: number): Promise<void>;
  unsubscribeLazy(channels?: Iterable<GlideString> | null): Promise<void>;
  close(): void;
}

/** What the backend uses of a `GlideClusterClient` beyond that. */
interface GlideClusterCommands extends GlideCommands {
  ssubscribe(channels: Iterable<GlideString>, timeoutMs: number): Promise<void>;
  sunsubscribeLazy(channels?: Iterable<GlideString> | null): Promise<void>;
}

/** The user's client, checked, with what its kind needs to open a subscriber like it. */
type CheckedClient =
  | { cluster: false; client: GlideCommands; create: CreateClient<GlideCommands> }
  | { cluster: true; client: GlideClusterCommands; create: CreateClient<GlideClusterCommands> };

/** `GlideClient.createClient` or `GlideClusterClient.createClient`, of the user's own copy of GLIDE. */
type CreateClient<Client> = (configuration: GlideConfiguration) => Promise<Client>;

const EXPECTED = 'expected a Valkey GLIDE client (GlideClient or GlideClusterClient)';

function assertGlideClient(client: unknown): CheckedClient {
  const candidate = client as Record<string, unknown> | null;
  if (typeof candidate !== 'object' || candidate === null) {
    throw new InvalidArgumentError('client', EXPECTED);
  }
  if (typeof candidate.customCommand !== 'function') {
    let hint = '';
    if (typeof candidate.defineCommand === 'function') {
      hint = ' (this looks like ioredis: use IoredisBackend from @deadbolt/ioredis)';
    } else if (typeof candidate.evalSha === 'function') {
      hint = ' (this looks like node-redis: use NodeRedisBackend from @deadbolt/node-redis)';
    }
    throw new InvalidArgumentError('client', `${EXPECTED}${hint}`);
  }
  const create = (candidate.constructor as { createClient?: unknown } | undefined)?.createClient;
  if (
    typeof candidate.subscribe !== 'function' ||
    typeof candidate.unsubscribeLazy !== 'function' ||
    typeof create !== 'function'
  ) {
    // Subscribing after creation came with GLIDE 2.3; before, a client could not take channels.
    throw new InvalidArgumentError(
      'client',
      `${EXPECTED} of @valkey/valkey-glide 2.3 or later, which subscribes to channels after creation`,
    );
  }
  // Checked now rather than when the first waiter opens the subscriber.
  configurationOf(candidate as unknown as GlideCommands);
  const createLike: CreateClient<GlideClusterCommands> = (configuration) =>
    (create as CreateClient<GlideClusterCommands>).call(candidate.constructor, configuration);
  if (typeof candidate.ssubscribe === 'function') {
    return {
      cluster: true,
      client: candidate as unknown as GlideClusterCommands,
      create: createLike,
    };
  }
  return { cluster: false, client: candidate as unknown as GlideCommands, create: createLike };
}

/**
 * The configuration `client` was created with: GLIDE keeps it, though not in its public types
 * (a later `updateConnectionPassword` shows in it only on a client created without credentials).
 */
function configurationOf(client: GlideCommands): GlideConfiguration {
  const { config } = client as unknown as { config?: GlideConfiguration };
  if (typeof config !== 'object' || config === null) {
    throw new InvalidArgumentError(
      'client',
      `${EXPECTED} that keeps the configuration it was created with, to create its subscriber like it`,
    );
  }
  return config;
}

/**
 * A new client like `client`, whose pub/sub messages go to `callback`. Dropped from the user's
 * configuration: their own subscriptions, their client-side cache (a subscriber reads no keys),
 * and the protocol, since GLIDE delivers pub/sub on RESP3 only.
 */
function subscriberLike<Client>(
  create: CreateClient<Client>,
  client: GlideCommands,
  callback: (message: PubSubMsg) => void,
): Promise<Client> {
  const {
    pubsubSubscriptions: _subscriptions,
    clientSideCache: _cache,
    protocol: _protocol,
    ...configuration
  } = configurationOf(client) as GlideClientConfiguration & { clientSideCache?: unknown };
  return create({ ...configuration, pubsubSubscriptions: { channelsAndPatterns: {}, callback } });
}

/** Runs scripts through `run`, which sends one command and resolves its reply. */
function glideTransport(run: (args: string[]) => Promise<unknown>): ScriptTransport {
  return {
    evalsha: (sha, keys, args) =>
      run(['EVALSHA', sha, String(keys.length), ...keys, ...args]).catch(asNoScript),
    eval: (source, keys, args) => run(['EVAL', source, String(keys.length), ...keys, ...args]),
  };
}

/**
 * GLIDE reports a script missing from the cache as `… NoScriptError: No matching script …`;
 * the shared script runner knows it by the server's own `NOSCRIPT`.
 */
function asNoScript(error: unknown): never {
  if (error instanceof Error && /NoScriptError|^NOSCRIPT/.test(error.message)) {
    throw new Error(`NOSCRIPT ${error.message}`, { cause: error });
  }
  throw error;
}

/** The {@link RedisConnection} of a `GlideClient`: scripts on it, and a client like it as subscriber. */
function glideConnection({ client, create }: CheckedClient): RedisConnection {
  return {
    name: 'valkey-glide',
    transport: glideTransport((args) => client.customCommand(args)),
    openSubscriber: () => openSubscriber(create, client, 'classic'),
  };
}

/**
 * The {@link RedisConnection} of a `GlideClusterClient`: scripts on it (GLIDE routes each by its
 * key and follows the cluster's redirections), the masters for the eviction check and listing,
 * and a cluster client like it as subscriber, with sharded pub/sub unless `pubsub` is `'classic'`.
 */
function glideClusterConnection(
  { client, create }: CheckedClient & { cluster: true },
  pubsub: PubSubMode,
): RedisConnection {
  return {
    name: 'valkey-glide',
    transport: glideTransport((args) => client.customCommand(args)),
    publishCommand: pubsub === 'sharded' ? 'SPUBLISH' : 'PUBLISH',
    servers: async (): Promise<LockServer[]> => {
      const slots = await client.customCommand(['CLUSTER', 'SLOTS']);
      return mastersOf(slots).map(({ host, port }) => ({
        address: `${host}:${port}`,
        transport: glideTransport((args) =>
          client.customCommand(args, { route: { type: 'routeByAddress', host, port } }),
        ),
      }));
    },
    openSubscriber: () => openSubscriber(create, client, pubsub),
  };
}

/** The masters in a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …], …replicas], …]`. */
function mastersOf(slots: unknown): { host: string; port: number }[] {
  if (!Array.isArray(slots)) throw new Error(`unexpected CLUSTER SLOTS reply: ${String(slots)}`);
  const masters = new Map<string, { host: string; port: number }>();
  for (const range of slots) {
    const [host, port] = (Array.isArray(range) ? range[2] : undefined) ?? [];
    if (host === undefined || port === undefined) continue;
    const master = { host: String(host), port: Number(port) };
    masters.set(`${master.host}:${master.port}`, master);
  }
  return [...masters.values()];
}

/**
 * The subscriber: a client like the user's, created now, whose one callback hands each message
 * to the listener of its channel. GLIDE subscribes again by itself after reconnecting.
 */
async function openSubscriber(
  create: CreateClient<GlideCommands>,
  client: GlideCommands,
  pubsub: PubSubMode,
): Promise<OwnedSubscriber> {
  const listeners = new Map<string, (message: string) => void>();
  const subscriber = (await subscriberLike(create, client, (message) => {
    listeners.get(String(message.channel))?.(String(message.message));
  })) as GlideClusterCommands;
  /**
   * Subscribes with `command`, listening before the confirmation comes. A subscription that
   * failed (its confirmation timed out while the server was down) is withdrawn, so that GLIDE
   * does not restore it later for nobody.
   */
  const subscribing = async (
    command: (channels: Set<string>) => Promise<void>,
    withdraw: (channels: Set<string>) => Promise<void>,
    channel: string,
    onMessage: (message: string) => void,
  ) => {
    listeners.set(channel, onMessage);
    try {
      await command(new Set([channel]));
    } catch (error) {
      listeners.delete(channel);
      withdraw(new Set([channel])).catch(() => undefined);
      throw error;
    }
  };
  // Unsubscribing only records the wish: it never waits for a server that is down, and GLIDE
  // applies subscriptions and unsubscriptions in the order they came.
  const unsubscribing = (withdraw: (channels: Set<string>) => Promise<void>, channel: string) => {
    listeners.delete(channel);
    return withdraw(new Set([channel]));
  };
  const sharded = {
    on: (channels: Set<string>) => subscriber.ssubscribe(channels, SUBSCRIBE_TIMEOUT_MS),
    off: (channels: Set<string>) => subscriber.sunsubscribeLazy(channels),
  };
  const classic = {
    on: (channels: Set<string>) => subscriber.subscribe(channels, SUBSCRIBE_TIMEOUT_MS),
    off: (channels: Set<string>) => subscriber.unsubscribeLazy(channels),
  };
  return {
    ...withClassicFallback(pubsub, {
      sharded: (channel, onMessage) => subscribing(sharded.on, sharded.off, channel, onMessage),
      shardedOff: (channel) => unsubscribing(sharded.off, channel),
      classic: (channel, onMessage) => subscribing(classic.on, classic.off, channel, onMessage),
      classicOff: (channel) => unsubscribing(classic.off, channel),
    }),
    close: async () => subscriber.close(),
  };
}
