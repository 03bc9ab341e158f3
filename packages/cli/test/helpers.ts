import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LockBackend } from '@deadbolt/core';

/** The built bin, as `npx @deadbolt/cli` runs it. */
export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** Stands for a backend and its key namespace in a test: CLI arguments and a backend for holders. */
export interface Topology {
  /** `--url …`, `--cluster …`, and the `--prefix` or `--table` of {@link Topology.backend}. */
  args: string[];
  /** A backend on the same locks as the CLI sees, to hold locks with. */
  backend: LockBackend;
}

/** What a run of the bin printed and exited with. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An environment without the outer one's `REDIS_URL` and `POSTGRES_URL`, plus `env`. */
export function cleanEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { REDIS_URL: _redis, POSTGRES_URL: _postgres, ...rest } = process.env;
  return { ...rest, ...env };
}

/** Runs `deadbolt …args` to its end, with stdin from `/dev/null` (not a terminal). */
export async function cli(args: string[], env?: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: cleanEnv(env), timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') reject(error);
        else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      },
    );
  });
}

/** `cli(args)` that must exit 0 with nothing on stderr; resolves stdout. */
export async function cliOk(args: string[]): Promise<string> {
  const result = await cli(args);
  if (result.code !== 0 || result.stderr !== '') {
    throw new Error(`deadbolt ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  }
  return result.stdout;
}

/** `cliOk(args)` parsed as JSON. */
export async function cliJson<T = unknown>(args: string[]): Promise<T> {
  return JSON.parse(await cliOk([...args, '--json'])) as T;
}

/**
 * Polls `check` until it returns something other than undefined, null or false, and resolves that.
 * The deadline only bounds a failure: a loaded machine makes it slower, never wrong.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A loopback port nobody listens on (until someone takes it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A random name part, so that tests never see each other's keys. */
export function randomId(): string {
  return randomBytes(4).toString('hex');
}

/** A running `deadbolt …args` whose stdout is read line by line, for `watch`. */
export class CliProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #stdout = '';
  stderr = '';

  constructor(args: string[]) {
    this.#child = spawn(process.execPath, [BIN, ...args], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout += chunk;
    });
    this.#child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.#exited = new Promise((resolve) => this.#child.once('exit', resolve));
  }

  /** Complete lines printed so far. */
  get lines(): string[] {
    return this.#stdout.split('\n').slice(0, -1);
  }

  /** Sends `signal` and resolves the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    this.#child.kill(signal);
    return this.#exited;
  }
}

/**
 * A terminal session in a tmux server of its own, driven as a person would: keys typed into a
 * shell, the screen read back. `deadbolt` is on its `PATH`.
 */
export class Terminal {
  readonly #socket: string;
  readonly #dir: string;

  private constructor(socket: string, dir: string) {
    this.#socket = socket;
    this.#dir = dir;
  }

  /** Starts a 200x50 bash in a new tmux server, with `env` and `deadbolt` on the `PATH`. */
  static async open(env: Record<string, string> = {}): Promise<Terminal> {
    const dir = await mkdtemp(join(tmpdir(), 'deadbolt-cli-'));
    const deadbolt = join(dir, 'deadbolt');
    await writeFile(deadbolt, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    await chmod(deadbolt, 0o755);
    // bash sets its own prompt over an inherited PS1, and tmux its own PATH over `-e PATH=`.
    await writeFile(join(dir, 'bashrc'), `PS1='$ '\nexport PATH='${dir}':"$PATH"\n`);
    // The server's socket lives in the directory too, so nothing is left behind.
    const terminal = new Terminal(join(dir, 'tmux.sock'), dir);
    const variables = { ...env, TERM: 'xterm' };
    try {
      await terminal.#start(variables, join(dir, 'bashrc'));
    } catch (error) {
      await terminal.close();
      throw error;
    }
    return terminal;
  }

  async #start(variables: Record<string, string>, bashrc: string): Promise<void> {
    await this.#tmux(
      'new-session',
      '-d',
      '-x',
      '200',
      '-y',
      '50',
      ...Object.entries(variables).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
      `bash --noprofile --rcfile ${bashrc}`,
    );
    await this.waitForScreen(/^\$/m);
  }

  /** Types `text` and presses Enter. */
  async type(text: string): Promise<void> {
    await this.#tmux('send-keys', '-l', text);
    await this.#tmux('send-keys', 'Enter');
  }

  /** Presses keys by tmux's names for them, such as `C-c` or `C-d`. */
  async press(...keys: string[]): Promise<void> {
    await this.#tmux('send-keys', ...keys);
  }

  /** The visible screen, wrapped lines joined. */
  async screen(): Promise<string> {
    return this.#tmux('capture-pane', '-p', '-J');
  }

  /** Resolves the screen once `pattern` matches it. */
  async waitForScreen(pattern: RegExp): Promise<string> {
    let last = '';
    try {
      return await waitFor(`${pattern} on the screen`, async () => {
        last = await this.screen();
        return pattern.test(last) && last;
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen shows:\n${last}`);
    }
  }

  async close(): Promise<void> {
    await this.#tmux('kill-server').catch(() => undefined);
    await rm(this.#dir, { recursive: true, force: true });
  }

  async #tmux(...args: string[]): Promise<string> {
    // The tmux server starts with this environment: without the outer REDIS_URL and POSTGRES_URL.
    const { stdout } = await promisify(execFile)('tmux', ['-S', this.#socket, ...args], {
      env: cleanEnv(),
    });
    return stdout;
  }
}
