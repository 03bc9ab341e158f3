import type { CliBackend } from './open-backend.js';

/** Where a run of `deadbolt` reads and writes: the process's streams and environment, in the bin. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Read for the confirmation of `release`, which asks only when it is a terminal. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** For `REDIS_URL` and `POSTGRES_URL`. */
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C: `watch` ends with exit code 0, other commands with 130. */
  signal: AbortSignal;
}

/** A stream the CLI writes text to; on a terminal (`isTTY`), `watch` redraws in place. */
export type OutputStream = NodeJS.WritableStream & { isTTY?: boolean };

/** What a command runs with. */
export interface CommandContext {
  backend: CliBackend;
  io: CliIo;
  /** `--json`: JSON on stdout instead of tables. */
  json: boolean;
}
