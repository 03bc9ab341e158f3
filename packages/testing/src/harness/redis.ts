import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { startContainer } from './container.js';
import { RedisProcess } from './processes.js';
import { RespError, type RespTarget, type RespValue, sendCommands } from './resp.js';

/** Where test servers come from. */
export type RedisProvider = 'external' | 'binary' | 'testcontainers';

/** What {@link chooseRedisProvider} decides from, so the decision can be tested on any machine. */
export interface RedisProviderFacts {
  /** A server to use instead of starting one (`REDIS_URL` or the `url` option). */
  redisUrl: string | undefined;
  /** Path of a `redis-server` binary, if one was found. */
  binary: string | undefined;
  /** Whether a Docker engine seems reachable. */
  dockerAvailable: boolean;
}

/**
 * Decides where test servers come from: a server named by `REDIS_URL`, else a local
 * `redis-server` binary, else Docker through testcontainers. Throws, saying what to install,
 * when none is possible.
 *
 * @param facts - what the machine offers; {@link startRedis} reads them from the environment
 */
export function chooseRedisProvider(facts: RedisProviderFacts): RedisProvider {
  if (facts.redisUrl) return 'external';
  if (facts.binary) return 'binary';
  if (facts.dockerAvailable) return 'testcontainers';
  throw new Error(
    '[deadbolt] [testing] no Redis to test against: install redis-server (apt-get install ' +
      'redis-server, brew install redis), or run Docker and add testcontainers to your ' +
      'devDependencies, or set REDIS_URL to a server the tests may use',
  );
}

/**
 * Finds an executable `redis-server` on `path`.
 *
 * @param path - directories to search, separated as in `PATH`
 * @default path process.env.PATH
 */
export function findRedisServerBinary(path = process.env.PATH ?? ''): string | undefined {
  return findExecutable('redis-server', path);
}

/** Finds an executable called `name` on `path` (directories separated as in `PATH`). */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Whether a Docker engine is likely reachable: `DOCKER_HOST` is set or the default socket exists.
 *
 * @param env - the environment to read `DOCKER_HOST` from
 */
export function isDockerAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

/** A Redis server for a test; fault operations work on servers the harness started itself. */
export interface RedisServer extends AsyncDisposable {
  /** `redis://host:port` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly provider: RedisProvider;
  /** The server's own temporary directory (binary servers only), removed by `stop()`. */
  readonly dir: string | undefined;
  /** SIGKILL the server, as in a crash; it stays down until {@link RedisServer.restart}. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing, as in a long pause. */
  pause(): Promise<void>;
  /** SIGCONT after {@link RedisServer.pause}. */
  resume(): Promise<void>;
  /** Kill (if running) and start again on the same port, empty. */
  restart(): Promise<void>;
  /** Stop the server and remove what it left behind; the port is free once this resolves. */
  stop(): Promise<void>;
  /** Sends one command over a fresh connection and resolves the raw RESP reply (rejects on an error reply). */
  command(...args: string[]): Promise<string>;
  /** Like {@link RedisServer.command}, decoded: strings, numbers, null and arrays of them. */
  call(...args: string[]): Promise<RespValue>;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /**
   * Use this server instead of starting one; fault operations then throw.
   * @default process.env.REDIS_URL
   */
  url?: string | undefined;
  /**
   * Extra `redis-server` arguments, for example `['--cluster-enabled', 'yes']`. Only for servers
   * the harness starts: with a `url` they throw.
   * @default []
   */
  args?: readonly string[] | undefined;
}

/**
 * Starts a real `redis-server` on a free loopback port (never 6379), with no persistence and its
 * own temporary directory, and resolves once it answers `PING`; `stop()` removes both. With
 * `REDIS_URL` set it uses that server instead (fault operations then throw), and without a
 * `redis-server` binary it runs `redis:7-alpine` in Docker through testcontainers.
 *
 * @param options - see {@link StartRedisOptions}
 * @example
 * ```ts
 * let redis: RedisServer;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(() => redis.stop());
 * // or, in one test: await using redis = await startRedis();
 * ```
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const url = options.url ?? (process.env.REDIS_URL || undefined);
  const args = options.args ?? [];
  const binary = url === undefined ? findRedisServerBinary() : undefined;
  const provider = chooseRedisProvider({
    redisUrl: url,
    binary,
    dockerAvailable: url === undefined && binary === undefined && isDockerAvailable(),
  });
  if (provider !== 'external') {
    return provider === 'binary' ? binaryServer(binary as string, args) : containerServer(args);
  }
  if (args.length > 0) {
    throw new Error(
      `[deadbolt] [testing] cannot start ${url} with ${args.join(' ')}: it is an existing server; unset REDIS_URL`,
    );
  }
  return externalServer(url as string);
}

/**
 * Starts `count` independent servers (for a quorum), in parallel. With `REDIS_URLS`
 * (comma-separated, one distinct server each) set, uses those instead.
 *
 * @param count - how many servers
 * @param options - as for {@link startRedis}, without `url`
 */
export async function startRedisServers(
  count: number,
  options: Omit<StartRedisOptions, 'url'> = {},
): Promise<RedisServer[]> {
  const urls = process.env.REDIS_URLS?.split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  if (urls !== undefined && urls.length > 0) {
    if (new Set(urls).size < count) {
      throw new Error(
        `[deadbolt] [testing] REDIS_URLS names ${new Set(urls).size} distinct servers; ${count} needed`,
      );
    }
    return urls.slice(0, count).map((url) => externalServer(url));
  }
  if (process.env.REDIS_URL && count > 1) {
    throw new Error(
      `[deadbolt] [testing] REDIS_URL names one server, and ${count} independent ones are needed: ` +
        'set REDIS_URLS to a comma-separated list of them, or unset REDIS_URL to start local servers',
    );
  }
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startRedis(options)),
  );
  const failed = started.find((result) => result.status === 'rejected');
  if (failed === undefined) {
    return started.map((result) => (result as PromiseFulfilledResult<RedisServer>).value);
  }
  // Stop what did start, so a partial failure leaves nothing running.
  await Promise.all(
    started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)),
  );
  throw (failed as PromiseRejectedResult).reason;
}

/** `command` and `call` over a fresh connection to `target`. */
function commands(target: RespTarget): Pick<RedisServer, 'command' | 'call'> {
  const one = async (args: string[]) => {
    const [reply] = await sendCommands(target, [args]);
    if (reply === undefined) throw new Error('[deadbolt] [testing] no reply');
    if (reply.value instanceof RespError) throw reply.value;
    return reply;
  };
  return {
    command: async (...args) => (await one(args)).raw,
    call: async (...args) => (await one(args)).value,
  };
}

async function binaryServer(binary: string, args: readonly string[]): Promise<RedisServer> {
  const server = await RedisProcess.start(binary, { args });
  const host = '127.0.0.1';
  return {
    url: `redis://${host}:${server.port}`,
    host,
    port: server.port,
    provider: 'binary',
    dir: server.dir,
    kill: () => server.kill(),
    pause: async () => server.pause(),
    resume: async () => server.resume(),
    restart: () => server.restart(),
    stop: () => server.stop(),
    ...commands({ host, port: server.port }),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

function externalServer(url: string): RedisServer {
  const parsed = new URL(url);
  const port = Number(parsed.port || 6379);
  const unsupported = async (): Promise<never> => {
    throw new Error(
      `[deadbolt] [testing] cannot inject faults into ${url}: it was not started by the harness; ` +
        'unset REDIS_URL (and REDIS_URLS) to run this test on a local redis-server',
    );
  };
  const tls = parsed.protocol === 'rediss:';
  const plain = commands({
    host: parsed.hostname,
    port,
    username: decodeURIComponent(parsed.username) || undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: Number(parsed.pathname.slice(1)) || undefined,
  });
  const noTls = async (): Promise<never> => {
    throw new Error(`[deadbolt] [testing] command() cannot reach ${url}: it speaks no TLS`);
  };
  return {
    url,
    host: parsed.hostname,
    port,
    provider: 'external',
    dir: undefined,
    kill: unsupported,
    pause: unsupported,
    resume: unsupported,
    restart: unsupported,
    stop: async () => undefined,
    command: tls ? noTls : plain.command,
    call: tls ? noTls : plain.call,
    [Symbol.asyncDispose]: async () => undefined,
  };
}

async function containerServer(args: readonly string[]): Promise<RedisServer> {
  const container = await startContainer(args);
  const { host, port } = container;
  return {
    url: `redis://${host}:${port}`,
    host,
    port,
    provider: 'testcontainers',
    dir: undefined,
    kill: container.kill,
    pause: container.pause,
    resume: container.resume,
    restart: container.restart,
    stop: container.stop,
    ...commands({ host, port }),
    [Symbol.asyncDispose]: container.stop,
  };
}
