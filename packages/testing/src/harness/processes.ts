import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ports the standard services use: never hand them out, even if they happen to be free. */
const RESERVED_PORTS = new Set([6379, 5432]);

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    // Cluster nodes also listen on port + 10000; keep that inside the valid range.
    if (port > 0 && port < 55_000 && !RESERVED_PORTS.has(port)) return port;
  }
}

/** Sends one RESP command over a fresh socket and resolves the raw reply (rejects on error replies). */
export function sendCommand(
  port: number,
  args: readonly string[],
  host = '127.0.0.1',
  timeoutMs = 2_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    const chunks: Buffer[] = [];
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no reply from ${host}:${port}`)));
    socket.once('error', fail);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const reply = Buffer.concat(chunks).toString('utf8');
      if (!isCompleteReply(reply)) return;
      socket.end();
      if (reply.startsWith('-')) reject(new Error(reply.slice(1).trim()));
      else resolve(reply);
    });
    const encoded = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('');
    socket.write(`*${args.length}\r\n${encoded}`);
  });
}

/** Enough RESP to know a simple, error, integer or bulk reply is complete. */
function isCompleteReply(reply: string): boolean {
  if (!reply.endsWith('\r\n')) return false;
  if (reply.startsWith('$')) {
    const length = Number(reply.slice(1, reply.indexOf('\r\n')));
    if (length < 0) return true;
    const headerEnd = reply.indexOf('\r\n') + 2;
    return Buffer.byteLength(reply.slice(headerEnd)) >= length + 2;
  }
  return true;
}

/** Polls `check` until it resolves true, or throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`[deadbolt] [testing] timed out waiting for ${what}`, { cause: lastError });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every server this process started when it exits, so a crashed test leaves nothing behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** One `redis-server` child process with its own temporary directory. */
export class RedisProcess {
  readonly port: number;
  readonly dir: string;
  readonly #extraArgs: readonly string[];
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string, extraArgs: readonly string[]) {
    this.port = port;
    this.dir = dir;
    this.#extraArgs = extraArgs;
  }

  /** Starts `binary` on a free port and waits until it answers `PING`. */
  static async start(binary: string, extraArgs: readonly string[] = []): Promise<RedisProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'deadbolt-redis-'));
    for (let attempt = 0; ; attempt++) {
      const server = new RedisProcess(await freePort(), dir, extraArgs);
      try {
        await server.spawn(binary);
        return server;
      } catch (error) {
        // Another process may have taken the port between our check and the server's bind.
        await server.kill();
        if (attempt >= 4) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && !this.#child.killed;
  }

  /** Spawns the server on this port (again, after a kill: empty, as no data is persisted). */
  async spawn(binary: string): Promise<void> {
    const child = spawn(
      binary,
      [
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
        ...this.#extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
    });
    this.#child = child;
    running.add(child);
    installExitHook();
    child.once('exit', () => running.delete(child));
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
      child.once('error', reject);
    });
    exited.catch(() => undefined);
    await Promise.race([
      waitFor(`redis-server on port ${this.port}`, async () =>
        (await sendCommand(this.port, ['PING'])).startsWith('+PONG'),
      ),
      exited,
    ]);
  }

  /** SIGKILL: the server vanishes without a goodbye, as in a crash. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Kills the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
