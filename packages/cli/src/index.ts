/**
 * The `deadbolt` command, and its parts for programs that run it in-process.
 *
 * @module @deadbolt/cli
 */

export type { CliIo, OutputStream } from './context.js';
export { ExitCode } from './exit-codes.js';
export type { HolderJson, LockJson, ReleaseJson, WatchJson } from './format.js';
export { run } from './run.js';
