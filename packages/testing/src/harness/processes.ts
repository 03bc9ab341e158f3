import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { RespError, sendCommands } from './resp.js';

/** Ports the standard services use: never hand them out, even if they happen to be free. */
const RESERVED_PORTS = new Set([6379, 5432]);

/** Cluster nodes also listen on port + 10000, so data ports stay below this. */
const MAX_DATA_PORT = 55_000;

/** Binds port 0 on `host` and returns the port the kernel picked, after closing it again. */
function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * A free TCP port on 127.0.0.1, as the kernel hands it out: never a standard service's port and
 * never one whose cluster bus port (+10000) would be out of range. The port is only free when
 * checked; {@link RedisProcess.start} retries when a server then finds it taken.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await kernelPort(host);
    if (port > 0 && port < MAX_DATA_PORT && !RESERVED_PORTS.has(port)) return port;
  }
  throw new Error('[deadbolt] [testing] found no free port below 55000 in 100 attempts');
}

/**
 * Sends one command over a fresh connection and resolves the raw RESP reply; rejects when the
 * reply is an error.
 */
export async function sendCommand(
  port: number,
  args: readonly string[],
  host = '127.0.0.1',
  timeoutMs = 2_000,
): Promise<string> {
  const [reply] = await sendCommands({ host, port }, [args], timeoutMs);
  if (reply === undefined) throw new Error('[deadbolt] [testing] no reply');
  if (reply.value instanceof RespError) throw reply.value;
  return reply.raw;
}

/** Polls `check` until it resolves true; throws after `timeoutMs`, or stops when `signal` aborts. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`[deadbolt] [testing] timed out waiting for ${what}`, { cause: lastError });
}

/** Every server this process started and has not stopped, for the exit hook. */
const live = new Set<RedisProcess>();
let exitHookInstalled = false;

/** Kills every live server and removes its directory; synchronous, as `exit` listeners must be. */
function cleanUpAll(): void {
  for (const server of live) server.killNow();
}

/**
 * Cleans up when this process ends, so a crashed or forgetful test leaves no `redis-server` and no
 * temporary directory behind. On a signal, cleans up and re-raises it once no other listener is
 * left to decide how to exit. (A SIGKILL of this process cannot be caught: its servers then live
 * until killed by hand; they only listen on loopback and hold no data on disk.)
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', cleanUpAll);
  // Signals reach only the main thread; worker threads still get the `exit` hook.
  if (!isMainThread) return;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpAll();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Options of {@link RedisProcess.start}. */
export interface RedisProcessOptions {
  /** Extra `redis-server` arguments, after the harness's own (later ones win). */
  args?: readonly string[] | undefined;
  /** Listen on this port instead of a free one (no retry then). */
  port?: number | undefined;
  /**
   * The text of a configuration file, written once into the server's directory and passed as
   * its first argument: `redis-sentinel` needs a file of its own, which it rewrites as it learns.
   * @default none
   */
  config?: string | undefined;
}

/**
 * One `redis-server` child process on 127.0.0.1 with its own temporary directory and no
 * persistence, so every (re)start is empty. The building block of single servers, independent
 * servers and (later) cluster nodes.
 */
export class RedisProcess {
  /** The port it listens on; stays the same across restarts. */
  readonly port: number;
  /** Its working directory (`--dir`), removed by {@link RedisProcess.stop}. */
  readonly dir: string;
  readonly #binary: string;
  readonly #args: readonly string[];
  readonly #configFile: string | undefined;
  #child: ChildProcess | undefined;
  #stopped = false;

  private constructor(
    binary: string,
    port: number,
    dir: string,
    args: readonly string[],
    configFile: string | undefined,
  ) {
    this.#binary = binary;
    this.port = port;
    this.dir = dir;
    this.#args = args;
    this.#configFile = configFile;
  }

  /**
   * Starts `binary` on a free port and waits until it answers `PING`. Retries on another port when
   * the chosen one was taken between the check and the server's bind.
   */
  static async start(binary: string, options: RedisProcessOptions = {}): Promise<RedisProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'deadbolt-redis-'));
    const attempts = options.port === undefined ? 5 : 1;
    const configFile = options.config === undefined ? undefined : join(dir, 'redis.conf');
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      // Written again on a retry: a server that died at once may have rewritten it already.
      if (configFile !== undefined) writeFileSync(configFile, options.config ?? '');
      const server = new RedisProcess(binary, port, dir, options.args ?? [], configFile);
      live.add(server);
      installExitHook();
      try {
        await server.#spawn();
        return server;
      } catch (error) {
        const exited = !server.running;
        await server.kill();
        live.delete(server);
        // Only an early exit (most likely the port was taken meanwhile) is worth another port.
        if (!exited || attempt >= attempts) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  }

  /** Whether the process is alive (running or paused). */
  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  /** Sends one command and resolves the raw RESP reply. */
  command(...args: string[]): Promise<string> {
    return sendCommand(this.port, args);
  }

  /** SIGKILL: the server vanishes without a goodbye, as in a crash. Resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // The child is unref'd so a forgotten server does not keep a test process alive; while we
    // wait for it to die it must count, or the process could end before the 'exit' event.
    child.ref();
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the server keeps its connections but answers nothing, as in a long pause. */
  pause(): void {
    if (this.running) this.#child?.kill('SIGSTOP');
  }

  /** SIGCONT after {@link RedisProcess.pause}. */
  resume(): void {
    if (this.running) this.#child?.kill('SIGCONT');
  }

  /** Kills the server if it runs and starts it again on the same port, empty. */
  async restart(): Promise<void> {
    if (this.#stopped) throw new Error('[deadbolt] [testing] cannot restart a stopped server');
    await this.kill();
    await this.#spawn();
  }

  /** Kills the server and removes its directory; the port is free again once this resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.kill();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous {@link RedisProcess.stop} for the exit hook: no waiting for the exit. */
  killNow(): void {
    this.#stopped = true;
    if (this.running) this.#child?.kill('SIGKILL');
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #spawn(): Promise<void> {
    const child = spawn(
      this.#binary,
      [
        ...(this.#configFile === undefined ? [] : [this.#configFile]),
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        ...this.#args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    // A server a test forgot to stop must not keep the test process alive; the exit hook kills it.
    child.unref();
    let output = '';
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-4_000);
      });
      (stream as { unref?: () => void } | null)?.unref?.();
    }
    // Stops polling as soon as the server dies (a taken port, a bad argument) and says why.
    const died = new AbortController();
    const exited = new Promise<never>((_, reject) => {
      const fail = (error: Error) => {
        died.abort(error);
        reject(error);
      };
      child.once('exit', (code, signal) =>
        fail(
          new Error(
            `[deadbolt] [testing] redis-server on port ${this.port} exited (${signal ?? code}): ${output.trim()}`,
          ),
        ),
      );
      child.once('error', fail);
    });
    exited.catch(() => undefined);
    await Promise.race([
      waitFor(
        `redis-server on port ${this.port}`,
        async () => {
          const [reply] = await sendCommands(
            { host: '127.0.0.1', port: this.port },
            [['PING']],
            500,
          );
          // NOAUTH also means it is up: the arguments asked for a password.
          return reply?.value === 'PONG' || reply?.raw.startsWith('-NOAUTH') === true;
        },
        10_000,
        died.signal,
      ),
      exited,
    ]);
  }
}
