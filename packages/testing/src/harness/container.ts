import { loadOptional } from './load-optional.js';
import { waitFor } from './processes.js';
import { RespError, sendCommands } from './resp.js';

/** The slice of a started testcontainers container this harness uses. */
interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  exec(command: string[]): Promise<{ exitCode: number; output: string }>;
  stop(): Promise<unknown>;
}

/** The slice of testcontainers (an optional peer dependency) this harness uses. */
interface Testcontainers {
  GenericContainer: new (
    image: string,
  ) => {
    withExposedPorts(port: number): {
      withCommand(command: string[]): { start(): Promise<StartedContainer> };
    };
  };
}

/** Fault operations on a containerised server, run inside the container. */
export interface ContainerHandle {
  host: string;
  port: number;
  kill(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * PID 1 of the container. Signals sent from inside a container to its PID 1 are dropped unless it
 * handles them, and SIGKILL/SIGSTOP cannot be handled, so redis-server must not be PID 1. This
 * shell keeps it as a child (its pid in /tmp/redis.pid) and starts it again, empty, whenever it
 * dies while /tmp/down is absent, so a restart keeps the container and thus its mapped port.
 */
const SUPERVISOR = [
  "trap 'kill -KILL $(cat /tmp/redis.pid) 2>/dev/null; exit 0' TERM INT",
  'while :; do',
  '  if [ -e /tmp/down ]; then sleep 0.05; continue; fi',
  '  redis-server --save \'\' --appendonly no "$@" & echo $! > /tmp/redis.pid',
  '  wait $!',
  'done',
].join('\n');

/** Kills the current redis-server and waits until the shell has reaped it. */
const KILL = [
  'pid=$(cat /tmp/redis.pid)',
  'kill -CONT "$pid"; kill -KILL "$pid"',
  'while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done',
].join('; ');

/** Starts `redis:7-alpine` through testcontainers, for machines with Docker but no redis-server. */
export async function startContainer(args: readonly string[]): Promise<ContainerHandle> {
  const moduleName = 'testcontainers';
  let testcontainers: Testcontainers;
  try {
    testcontainers = await loadOptional<Testcontainers>(moduleName);
  } catch (error) {
    throw new Error(
      '[deadbolt] [testing] no redis-server binary on PATH and testcontainers is not installed: ' +
        'install redis-server (apt-get install redis-server, brew install redis), or add ' +
        'testcontainers to your devDependencies to run Redis in Docker',
      { cause: error },
    );
  }
  const container = await new testcontainers.GenericContainer('redis:7-alpine')
    .withExposedPorts(6379)
    .withCommand(['sh', '-c', SUPERVISOR, 'supervisor', ...args])
    .start();
  const host = container.getHost();
  const port = container.getMappedPort(6379);
  const shell = async (script: string) => {
    const { exitCode, output } = await container.exec(['sh', '-c', script]);
    if (exitCode !== 0) {
      throw new Error(`[deadbolt] [testing] \`${script}\` failed in the container: ${output}`);
    }
  };
  const ready = () =>
    waitFor(`redis-server in the container at ${host}:${port}`, async () => {
      const [reply] = await sendCommands({ host, port }, [['PING']], 500);
      return reply !== undefined && !(reply.value instanceof RespError) && reply.value === 'PONG';
    });
  await ready();
  return {
    host,
    port,
    kill: () => shell(`touch /tmp/down; ${KILL}`),
    pause: () => shell('kill -STOP "$(cat /tmp/redis.pid)"'),
    resume: () => shell('kill -CONT "$(cat /tmp/redis.pid)"'),
    restart: async () => {
      await shell(`touch /tmp/down; ${KILL}; rm -f /tmp/down`);
      await ready();
    },
    stop: async () => {
      await container.stop();
    },
  };
}
