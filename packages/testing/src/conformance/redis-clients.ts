/** Client settings the Redis suites ask for, in words every client library has. */
export interface RedisClientSettings {
  /**
   * The name the client gives itself on the server (`CLIENT SETNAME`), which its duplicates keep,
   * so that a test can count the connections a backend opened.
   * @default none
   */
  connectionName?: string;
  /** Commands fail at once while the connection is down, instead of waiting to be sent. @default false */
  failFast?: boolean;
  /** Whether the client connects again by itself after losing its connection. @default true */
  reconnect?: boolean;
  /** One of the {@link RedisTestClients.variants}; none for the library's defaults. @default none */
  variant?: string;
}

/**
 * How the Redis suites make and handle clients of one library: `connect` turns
 * {@link RedisClientSettings} into that library's options. `ioredisTestClients` and
 * `nodeRedisTestClients` serve deadbolt's own adapters; an adapter for another library writes its
 * own.
 */
export interface RedisTestClients<Client = unknown> {
  /** How the adapter's errors name the library: `[deadbolt] [ioredis] …`. */
  library: string;
  /**
   * What `connect` connects to: one server, a Redis Cluster through the URL of one of its nodes,
   * or a master found through its sentinels, given as a `redis-sentinel://` URL (see
   * {@link parseSentinelUrl}).
   * @default 'server'
   */
  topology?: 'server' | 'cluster' | 'sentinel';
  /** A client of `url`, connected or connecting; it resolves even when nothing answers there. */
  connect(url: string, settings?: RedisClientSettings): Promise<Client>;
  /** Sends `PING`. */
  ping(client: Client): Promise<unknown>;
  /**
   * Whether a client made with `reconnect: false` stops reconnecting once its connection is lost
   * (ioredis, node-redis), so that `reconnect` has something to do. A library whose clients
   * reconnect for ever says `false` (Valkey GLIDE): the test of a subscriber whose client gave up
   * then does not run, and `reconnect: false` only serves a client that nothing answers.
   * @default true
   */
  canGiveUp?: boolean;
  /** Connects `client` again after it gave up (`reconnect: false`). */
  reconnect(client: Client): Promise<unknown>;
  /** Closes `client`, whatever state it is in. */
  close(client: Client): void;
  /**
   * Kinds of client, besides the library's defaults, that the wake-up test also runs on, each
   * passed to `connect` as `settings.variant` (for example `'lazyConnect'`, `'keyPrefix'`).
   * @default []
   */
  variants?: readonly string[];
  /**
   * Connections the backend's subscriber keeps open to the master while it has subscriptions and
   * once it has none. A node-redis Sentinel's `duplicate()` keeps a master connection of its own
   * and subscribes on another one, which it closes when the last channel is unsubscribed (and
   * opens again for the next): `{ subscribed: 2, idle: 1 }`.
   * @default { subscribed: 1, idle: 1 }
   */
  subscriberConnections?: { subscribed: number; idle: number };
  /** The library's class of error replies, which a `BackendError` keeps as `cause`. @default Error */
  ReplyError?: abstract new (
    ...args: never[]
  ) => Error;
}

/** What {@link ioredisTestClients} uses of an ioredis `Redis`. */
export interface IoredisTestClient {
  ping(): Promise<unknown>;
  connect(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** What {@link ioredisTestClients} and {@link ioredisClusterTestClients} use of the `ioredis` module. */
export interface IoredisModule {
  Redis: new (
    url: string,
    options: {
      connectionName?: string;
      enableOfflineQueue?: boolean;
      maxRetriesPerRequest?: number;
      retryStrategy?: () => null;
      lazyConnect?: boolean;
      keyPrefix?: string;
    },
  ) => IoredisTestClient;
  Cluster: new (
    startupNodes: string[],
    options: {
      redisOptions?: { connectionName?: string };
      enableOfflineQueue?: boolean;
      clusterRetryStrategy?: () => null;
      keyPrefix?: string;
    },
  ) => IoredisTestClient;
  ReplyError: abstract new (...args: never[]) => Error;
}

/**
 * ioredis clients for the Redis suites, with two variants: `'lazyConnect'`, and `'keyPrefix'`
 * (`app:`, which ioredis adds to the KEYS of every script).
 *
 * @param ioredis - the `ioredis` module (`import * as ioredis from 'ioredis'`)
 */
export function ioredisTestClients(ioredis: IoredisModule): RedisTestClients<IoredisTestClient> {
  return {
    library: 'ioredis',
    connect: async (url, { connectionName, failFast, reconnect = true, variant } = {}) => {
      return quiet(
        new ioredis.Redis(url, {
          ...(connectionName !== undefined && { connectionName }),
          ...(failFast && { enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
          ...(!reconnect && { retryStrategy: () => null }),
          ...(variant === 'lazyConnect' && { lazyConnect: true }),
          ...(variant === 'keyPrefix' && { keyPrefix: 'app:' }),
        }),
      );
    },
    ...ioredisHandling(ioredis),
    variants: ['lazyConnect', 'keyPrefix'],
  };
}

/**
 * ioredis `Cluster` clients for the Redis suites, with the variant `'keyPrefix'` (`app:`).
 *
 * @param ioredis - the `ioredis` module (`import * as ioredis from 'ioredis'`)
 */
export function ioredisClusterTestClients(
  ioredis: IoredisModule,
): RedisTestClients<IoredisTestClient> {
  return {
    library: 'cluster',
    topology: 'cluster',
    connect: async (url, { connectionName, failFast, reconnect = true, variant } = {}) => {
      return quiet(
        new ioredis.Cluster([url], {
          ...(connectionName !== undefined && { redisOptions: { connectionName } }),
          ...(failFast && { enableOfflineQueue: false }),
          ...(!reconnect && { clusterRetryStrategy: () => null }),
          ...(variant === 'keyPrefix' && { keyPrefix: 'app:' }),
        }),
      );
    },
    ...ioredisHandling(ioredis),
    variants: ['keyPrefix'],
  };
}

/** What {@link ioredisSentinelTestClients} uses of the `ioredis` module (or a fork of it). */
export interface IoredisSentinelModule {
  Redis: new (options: {
    sentinels: { host: string; port: number }[];
    name: string;
    connectionName?: string;
    enableOfflineQueue?: boolean;
    maxRetriesPerRequest?: number;
    sentinelRetryStrategy?: () => null;
    retryStrategy?: () => null;
    keyPrefix?: string;
  }) => IoredisTestClient;
  ReplyError: abstract new (...args: never[]) => Error;
}

/**
 * The sentinels and master name of a `redis-sentinel://host:port,host:port/<name>` URL, as
 * `startRedisSentinel()` gives it in `url`.
 *
 * @param url - a `redis-sentinel://` URL
 */
export function parseSentinelUrl(url: string): {
  sentinels: { host: string; port: number }[];
  name: string;
} {
  const match = /^redis-sentinel:\/\/([^/]+)\/(.+)$/.exec(url);
  if (match === null) {
    throw new Error(
      `[deadbolt] [testing] expected redis-sentinel://host:port,…/<name>, got ${url}`,
    );
  }
  const sentinels = (match[1] as string).split(',').map((address) => {
    const at = address.lastIndexOf(':');
    return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
  });
  return { sentinels, name: decodeURIComponent(match[2] as string) };
}

/**
 * ioredis clients that find the master through its sentinels (`new Redis({ sentinels, name })`),
 * with the variant `'keyPrefix'` (`app:`). `connect` takes a `redis-sentinel://` URL.
 *
 * @param ioredis - the `ioredis` module (`import * as ioredis from 'ioredis'`) or a fork of it
 * @param library - how the adapter's errors name the library
 * @default library 'ioredis'
 */
export function ioredisSentinelTestClients(
  ioredis: IoredisSentinelModule,
  library = 'ioredis',
): RedisTestClients<IoredisTestClient> {
  return {
    library,
    topology: 'sentinel',
    connect: async (url, { connectionName, failFast, reconnect = true, variant } = {}) => {
      return quiet(
        new ioredis.Redis({
          ...parseSentinelUrl(url),
          ...(connectionName !== undefined && { connectionName }),
          ...(failFast && { enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
          ...(!reconnect && { sentinelRetryStrategy: () => null, retryStrategy: () => null }),
          ...(variant === 'keyPrefix' && { keyPrefix: 'app:' }),
        }),
      );
    },
    ...ioredisHandling(ioredis),
    variants: ['keyPrefix'],
  };
}

/** `client`, with the connection errors the suites cause on purpose kept from the output. */
function quiet(client: IoredisTestClient): IoredisTestClient {
  client.on('error', () => undefined);
  return client;
}

/** How the suites handle an ioredis `Redis` or `Cluster` once made. */
function ioredisHandling(ioredis: Pick<IoredisModule, 'ReplyError'>) {
  return {
    ping: (client: IoredisTestClient) => client.ping(),
    reconnect: (client: IoredisTestClient) => client.connect(),
    close: (client: IoredisTestClient) => client.disconnect(),
    ReplyError: ioredis.ReplyError,
  };
}

/** What {@link nodeRedisTestClients} uses of a node-redis client. */
export interface NodeRedisTestClient {
  readonly isOpen: boolean;
  ping(): Promise<unknown>;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Options of a node-redis client that the suites set. */
interface NodeRedisTestOptions {
  name?: string;
  disableOfflineQueue?: boolean;
  socket?: { reconnectStrategy: false };
  RESP?: 3;
}

/** What the node-redis test clients use of the `redis` module (node-redis 5 or 6). */
export interface NodeRedisModule {
  createClient(
    options: NodeRedisTestOptions & { url: string; keyPrefix?: string },
  ): NodeRedisTestClient;
  createCluster(options: {
    rootNodes: { url: string }[];
    defaults?: NodeRedisTestOptions;
    keyPrefix?: string;
  }): NodeRedisTestClient;
  ErrorReply: abstract new (...args: never[]) => Error;
}

/**
 * node-redis clients for the Redis suites, with the variants `'RESP3'` and, where the library has
 * it (node-redis 6), `'keyPrefix'` (`app:`, which node-redis 6 adds to the KEYS of every script).
 *
 * @param redis - the `redis` module (`import * as redis from 'redis'`)
 * @param variants - the variants this major has: both by default, `['RESP3']` for node-redis 5
 */
export function nodeRedisTestClients(
  redis: NodeRedisModule,
  variants: readonly ('RESP3' | 'keyPrefix')[] = ['RESP3', 'keyPrefix'],
): RedisTestClients<NodeRedisTestClient> {
  return {
    ...nodeRedisHandling(redis),
    library: 'node-redis',
    connect: (url, settings = {}) => {
      const { variant } = settings;
      return connected(
        redis.createClient({
          url,
          ...nodeRedisOptions(settings),
          ...(variant === 'RESP3' && { RESP: 3 }),
          ...(variant === 'keyPrefix' && { keyPrefix: 'app:' }),
        }),
      );
    },
    variants,
  };
}

/**
 * node-redis cluster clients (`createCluster()`) for the Redis suites, with the variant
 * `'keyPrefix'` (`app:`, node-redis 6).
 *
 * @param redis - the `redis` module (`import * as redis from 'redis'`)
 */
export function nodeRedisClusterTestClients(
  redis: NodeRedisModule,
): RedisTestClients<NodeRedisTestClient> {
  return {
    ...nodeRedisHandling(redis),
    library: 'cluster',
    topology: 'cluster',
    connect: (url, settings = {}) =>
      connected(
        redis.createCluster({
          rootNodes: [{ url }],
          defaults: nodeRedisOptions(settings),
          ...(settings.variant === 'keyPrefix' && { keyPrefix: 'app:' }),
        }),
      ),
    variants: ['keyPrefix'],
  };
}

/** What {@link nodeRedisSentinelTestClients} uses of the `redis` module (node-redis 5 or 6). */
export interface NodeRedisSentinelModule {
  createSentinel(options: {
    name: string;
    sentinelRootNodes: { host: string; port: number }[];
    nodeClientOptions?: NodeRedisTestOptions;
    sentinelClientOptions?: NodeRedisTestOptions;
  }): NodeRedisTestClient;
  ErrorReply: abstract new (...args: never[]) => Error;
}

/**
 * node-redis Sentinel clients (`createSentinel()`) for the Redis suites. `connect` takes a
 * `redis-sentinel://` URL.
 *
 * @param redis - the `redis` module (`import * as redis from 'redis'`)
 */
export function nodeRedisSentinelTestClients(
  redis: NodeRedisSentinelModule,
): RedisTestClients<NodeRedisTestClient> {
  return {
    ...nodeRedisHandling(redis),
    library: 'node-redis',
    topology: 'sentinel',
    connect: (url, settings = {}) => {
      const { sentinels, name } = parseSentinelUrl(url);
      const options = nodeRedisOptions(settings);
      return connected(
        redis.createSentinel({
          name,
          sentinelRootNodes: sentinels,
          nodeClientOptions: options,
          ...(options.socket && { sentinelClientOptions: { socket: options.socket } }),
        }),
      );
    },
    subscriberConnections: { subscribed: 2, idle: 1 },
    variants: [],
  };
}

/** The options of `settings` that a node-redis client and every client of a cluster take. */
function nodeRedisOptions(settings: RedisClientSettings): NodeRedisTestOptions {
  const { connectionName, failFast, reconnect = true } = settings;
  return {
    ...(connectionName !== undefined && { name: connectionName }),
    ...(failFast && { disableOfflineQueue: true }),
    ...(!reconnect && { socket: { reconnectStrategy: false } }),
  };
}

/** `client`, connected; left closed when nothing answers, so that the backend's calls fail. */
async function connected(client: NodeRedisTestClient): Promise<NodeRedisTestClient> {
  // Without a listener node-redis would crash the process when the suites stop the server.
  client.on('error', () => undefined);
  await client.connect().catch(() => undefined);
  return client;
}

/** How the suites handle a node-redis client or cluster once made. */
function nodeRedisHandling(redis: Pick<NodeRedisModule, 'ErrorReply'>) {
  return {
    ping: (client: NodeRedisTestClient) => client.ping(),
    reconnect: (client: NodeRedisTestClient) => client.connect(),
    close: (client: NodeRedisTestClient) => {
      if (client.isOpen) client.destroy();
    },
    ReplyError: redis.ErrorReply,
  };
}
