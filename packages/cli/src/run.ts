import { DeadboltError, InvalidArgumentError } from '@deadbolt/core';
import { type CommandLine, type CommandName, parseCommandLine, UsageError } from './args.js';
import { inspect } from './commands/inspect.js';
import { list } from './commands/list.js';
import { release } from './commands/release.js';
import { watch } from './commands/watch.js';
import type { CliIo, CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { helpText } from './help.js';
import { type OpenedBackend, openBackend } from './open-backend.js';
import { VERSION } from './version.js';

/**
 * Runs one `deadbolt` command line and resolves its exit code; never rejects. The bin is this
 * function over the process's streams, environment and SIGINT.
 *
 * @param argv - the arguments after the program's name
 * @param io - where to read and write, and the signal Ctrl-C aborts
 * @example
 * ```ts
 * process.exitCode = await run(process.argv.slice(2), { stdout, stderr, stdin, env, signal });
 * ```
 */
export async function run(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let request: CommandLine;
  try {
    request = parseCommandLine(argv, io.env);
  } catch (error) {
    return fail(io, error);
  }
  if ('help' in request) {
    io.stdout.write(helpText(request.help));
    return ExitCode.ok;
  }
  if ('version' in request) {
    io.stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }
  const { command, target, json } = request.invocation;
  if (command.name === 'release' && !command.yes && io.stdin.isTTY !== true) {
    return fail(
      io,
      new UsageError('stdin is not a terminal, so release cannot ask: pass --yes', 'release'),
    );
  }
  let opened: OpenedBackend | undefined;
  try {
    opened = await untilInterrupted(io.signal, openBackend(target));
    if (opened === undefined) return ExitCode.interrupted;
    const context: CommandContext = { backend: opened.backend, io, json };
    // `watch` runs until Ctrl-C and ends well; any other command is cut short by it.
    if (command.name === 'watch') return await watch(context, command, io.signal);
    const running =
      command.name === 'list'
        ? list(context, command)
        : command.name === 'inspect'
          ? inspect(context, command)
          : release(context, command);
    return (await untilInterrupted(io.signal, running)) ?? ExitCode.interrupted;
  } catch (error) {
    return fail(io, error, command.name);
  } finally {
    await opened?.close();
  }
}

/** What `work` resolves, or undefined as soon as `signal` aborts (`work` is left to settle). */
function untilInterrupted<T>(signal: AbortSignal, work: Promise<T>): Promise<T | undefined> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const interrupted = () => {
      work.catch(() => undefined);
      resolve(undefined);
    };
    signal.addEventListener('abort', interrupted, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', interrupted));
  });
}

/** Reports `error` on stderr and gives its exit code. */
function fail(io: CliIo, error: unknown, command?: CommandName): ExitCode {
  if (error instanceof UsageError || error instanceof InvalidArgumentError) {
    // A backend's option (`options.prefix`) is the command line's `--prefix`.
    const text = message(error).replace(/^invalid options\./, 'invalid --');
    const help = error instanceof UsageError ? error.command : command;
    io.stderr.write(
      `deadbolt: ${text}\nRun 'deadbolt ${help === undefined ? '' : `${help} `}--help' for usage.\n`,
    );
    return ExitCode.usage;
  }
  io.stderr.write(`deadbolt: ${message(error)}\n`);
  return ExitCode.backend;
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return error instanceof DeadboltError ? text.replace(/^\[deadbolt\] /, '') : text;
}
