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
   * What `connect` connects to: one server, or a Redis Cluster through the URL of one of its nodes.
   * @default 'server'
   */
  topology?: 'server' | 'cluster';
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

/** `client`, with the connection errors the suites cause on purpose kept from the output. */
function quiet(client: IoredisTestClient): IoredisTestClient {
  client.on('error', () => undefined);
  return client;
}

/** How the suites handle an ioredis `Redis` or `Cluster` once made. */
function ioredisHandling(ioredis: IoredisModule) {
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
function nodeRedisHandling(redis: NodeRedisModule) {
  return {
    ping: (client: NodeRedisTestClient) => client.ping(),
    reconnect: (client: NodeRedisTestClient) => client.connect(),
    close: (client: NodeRedisTestClient) => {
      if (client.isOpen) client.destroy();
    },
    ReplyError: redis.ErrorReply,
  };
}
