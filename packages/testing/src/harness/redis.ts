import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RedisProcess, sendCommand } from './processes.js';

/** Where test servers come from. */
export type RedisProvider = 'external' | 'binary' | 'testcontainers';

/** What {@link chooseRedisProvider} decides from; each field is read from the machine by default. */
export interface RedisProviderFacts {
  /** `REDIS_URL` (or `REDIS_URLS`): use that server instead of starting one. */
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
 */
export function chooseRedisProvider(facts: RedisProviderFacts): RedisProvider {
  if (facts.redisUrl) return 'external';
  if (facts.binary) return 'binary';
  if (facts.dockerAvailable) return 'testcontainers';
  throw new Error(
    '[deadbolt] [testing] no Redis to test against: install redis-server (apt-get install ' +
      'redis-server, brew install redis), or run Docker and install testcontainers, or set ' +
      'REDIS_URL to a server the tests may use',
  );
}

/** Finds an executable `redis-server` on `PATH`. */
export function findRedisServerBinary(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Whether a Docker engine is likely reachable: `DOCKER_HOST` is set or the default socket exists. */
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
  /** SIGKILL the server, as in a crash. */
  kill(): Promise<void>;
  /** SIGSTOP: the server stops answering but keeps its connections, as in a long pause. */
  pause(): Promise<void>;
  /** SIGCONT after {@link RedisServer.pause}. */
  resume(): Promise<void>;
  /** Kill (if running) and start again on the same port, empty. */
  restart(): Promise<void>;
  /** Stop the server and remove what it left behind. */
  stop(): Promise<void>;
  /** Sends one command over a fresh connection and resolves the raw RESP reply, for test assertions. */
  command(...args: string[]): Promise<string>;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Use this server instead of starting one. @default process.env.REDIS_URL */
  url?: string;
  /** Extra `redis-server` arguments, for example `['--cluster-enabled', 'yes']`. @default [] */
  args?: readonly string[];
}

/**
 * Starts a real `redis-server` on a free loopback port, with no persistence and its own temporary
 * directory; `stop()` removes both. With `REDIS_URL` set it uses that server instead (fault
 * operations then throw), and without a `redis-server` binary it falls back to Docker.
 *
 * @example
 * ```ts
 * let redis: RedisServer;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(() => redis.stop());
 * ```
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const url = options.url ?? process.env.REDIS_URL;
  const binary = findRedisServerBinary();
  const provider = chooseRedisProvider({
    redisUrl: url,
    binary,
    dockerAvailable: binary === undefined && url === undefined && isDockerAvailable(),
  });
  if (provider === 'external') return externalServer(url as string);
  if (provider === 'binary') return binaryServer(binary as string, options.args ?? []);
  return containerServer(options.args ?? []);
}

/**
 * Starts `count` independent servers (for a quorum). With `REDIS_URLS` (comma-separated) set, uses
 * those instead.
 */
export async function startRedisServers(
  count: number,
  options: Omit<StartRedisOptions, 'url'> = {},
): Promise<RedisServer[]> {
  const urls = process.env.REDIS_URLS?.split(',').map((url) => url.trim());
  if (urls && urls.length < count) {
    throw new Error(
      `[deadbolt] [testing] REDIS_URLS names ${urls.length} servers; ${count} needed`,
    );
  }
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      startRedis({ ...options, ...(urls ? { url: urls[index] } : {}) }),
    ),
  );
}

function binaryServer(binary: string, args: readonly string[]): Promise<RedisServer> {
  return RedisProcess.start(binary, args).then((server) => ({
    url: `redis://127.0.0.1:${server.port}`,
    host: '127.0.0.1',
    port: server.port,
    provider: 'binary' as const,
    kill: () => server.kill(),
    pause: async () => server.pause(),
    resume: async () => server.resume(),
    restart: async () => {
      await server.kill();
      await server.spawn(binary);
    },
    stop: () => server.stop(),
    command: (...args: string[]) => sendCommand(server.port, args),
    [Symbol.asyncDispose]: () => server.stop(),
  }));
}

function externalServer(url: string): RedisServer {
  const parsed = new URL(url);
  const unsupported = async (): Promise<never> => {
    throw new Error(
      `[deadbolt] [testing] cannot inject faults into ${url}: it was not started by the harness; unset REDIS_URL`,
    );
  };
  return {
    url,
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    provider: 'external',
    kill: unsupported,
    pause: unsupported,
    resume: unsupported,
    restart: unsupported,
    stop: async () => undefined,
    command: (...args: string[]) => sendCommand(Number(parsed.port || 6379), args, parsed.hostname),
    [Symbol.asyncDispose]: async () => undefined,
  };
}

/** The slice of testcontainers this harness uses (an optional peer dependency). */
interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  stop(): Promise<unknown>;
  restart(): Promise<unknown>;
  exec(command: string[]): Promise<unknown>;
}
interface Testcontainers {
  GenericContainer: new (
    image: string,
  ) => {
    withExposedPorts(port: number): {
      withCommand(command: string[]): { start(): Promise<StartedContainer> };
    };
  };
}

async function containerServer(args: readonly string[]): Promise<RedisServer> {
  const moduleName = 'testcontainers';
  let testcontainers: Testcontainers;
  try {
    testcontainers = (await import(moduleName)) as Testcontainers;
  } catch (error) {
    throw new Error(
      '[deadbolt] [testing] no redis-server binary found; install redis-server, or install testcontainers to use Docker',
      { cause: error },
    );
  }
  const container = await new testcontainers.GenericContainer('redis:7-alpine')
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no', ...args])
    .start();
  const host = container.getHost();
  const port = container.getMappedPort(6379);
  const signal = (name: string) => async () => {
    await container.exec(['kill', `-${name}`, '1']);
  };
  return {
    url: `redis://${host}:${port}`,
    host,
    port,
    provider: 'testcontainers',
    kill: signal('KILL'),
    pause: signal('STOP'),
    resume: signal('CONT'),
    restart: async () => {
      await container.restart();
    },
    command: (...args: string[]) => sendCommand(port, args, host),
    stop: async () => {
      await container.stop();
    },
    [Symbol.asyncDispose]: async () => {
      await container.stop();
    },
  };
}
