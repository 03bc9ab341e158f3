import { parseArgs } from 'node:util';
import { assertKey, InvalidArgumentError, MAX_DURATION_MS } from '@deadbolt/core';

/** The commands of `deadbolt`. */
export const COMMANDS = ['list', 'inspect', 'watch', 'release'] as const;

/** One of {@link COMMANDS}. */
export type CommandName = (typeof COMMANDS)[number];

/** Where the locks are: a Redis server, a Redis Cluster or a PostgreSQL database. */
export type Target =
  | { kind: 'redis'; url: string; prefix: string | undefined }
  | { kind: 'cluster'; seeds: string[]; prefix: string | undefined }
  | { kind: 'postgres'; url: string; table: string | undefined; schema: string | undefined };

/** What a command was asked to do. */
export type Command =
  | { name: 'list'; pattern: string }
  | { name: 'inspect'; key: string }
  | { name: 'watch'; key: string; intervalMs: number }
  | { name: 'release'; key: string; yes: boolean };

/** A command line that names a command to run. */
export interface Invocation {
  command: Command;
  target: Target;
  /** Print JSON for scripts instead of tables for people. */
  json: boolean;
}

/** What a command line asks for: help (on a command, or on `deadbolt`), the version, or a run. */
export type CommandLine =
  | { help: CommandName | undefined }
  | { version: true }
  | { invocation: Invocation };

/** The command line is wrong; the message says how. Exit code 1. */
export class UsageError extends Error {
  /** The command it was for, if it got that far: its help is the place to look. */
  readonly command: CommandName | undefined;

  constructor(message: string, command?: CommandName) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** The watch's refresh between wake-ups when `--interval` is not given, in seconds. */
export const DEFAULT_INTERVAL_SECONDS = 2;

const OPTIONS = {
  url: { type: 'string' },
  cluster: { type: 'string', multiple: true },
  prefix: { type: 'string' },
  table: { type: 'string' },
  schema: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  interval: { type: 'string' },
  force: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
} as const;

type OptionName = keyof typeof OPTIONS;

/** The options only some commands take; every command takes the rest. */
const COMMAND_OPTIONS: Partial<Record<OptionName, CommandName>> = {
  interval: 'watch',
  force: 'release',
  yes: 'release',
};

type Values = ReturnType<typeof parse>['values'];

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

/**
 * Reads a command line (without `node` and the script). Options may come before or after the
 * command; `--` ends them, for keys that start with `-`.
 *
 * @param argv - the arguments, as in `process.argv.slice(2)`
 * @param env - the environment, for `REDIS_URL` and `POSTGRES_URL`
 * @throws {@link UsageError} when the command line is wrong
 */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CommandLine {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    // node:util's own messages say what is wrong; its hint on this one is longer than needed.
    const text = (error as Error).message.replace(
      /^Unknown option '([^']*)'.*$/s,
      "unknown option '$1' (a key that starts with - goes after --)",
    );
    throw new UsageError(text, commandIn(argv));
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;
  if (first === 'help') return { help: rest[0] === undefined ? undefined : commandNamed(rest[0]) };
  if (values.version) return { version: true };
  if (first === undefined) {
    if (values.help) return { help: undefined };
    throw new UsageError('no command given: list, inspect, watch or release');
  }
  const name = commandNamed(first);
  if (values.help) return { help: name };
  for (const [option, only] of Object.entries(COMMAND_OPTIONS)) {
    if (values[option as OptionName] !== undefined && only !== name) {
      throw new UsageError(`--${option} is an option of ${only}, not of ${name}`, name);
    }
  }
  return {
    invocation: {
      command: commandOf(name, rest, values),
      target: targetOf(values, env, name),
      json: values.json === true,
    },
  };
}

function commandNamed(word: string): CommandName {
  if ((COMMANDS as readonly string[]).includes(word)) return word as CommandName;
  throw new UsageError(`unknown command '${word}': expected ${COMMANDS.join(', ')}`);
}

/** The command a command line that failed to parse was for, so its help can be suggested. */
function commandIn(argv: readonly string[]): CommandName | undefined {
  return COMMANDS.find((name) => argv.includes(name));
}

function commandOf(name: CommandName, args: string[], values: Values): Command {
  if (name === 'list') {
    if (args.length > 1) throw new UsageError('list takes one pattern at most', name);
    return { name, pattern: args[0] ?? '*' };
  }
  if (args.length !== 1) {
    throw new UsageError(`${name} takes one key, got ${args.length}`, name);
  }
  const key = args[0] as string;
  try {
    assertKey(key);
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      throw new UsageError(error.message.replace('[deadbolt] ', ''), name);
    }
    throw error;
  }
  if (name === 'inspect') return { name, key };
  if (name === 'watch') return { name, key, intervalMs: intervalOf(values.interval) };
  if (!values.force) {
    throw new UsageError(
      'release takes the lock away from processes that may still work under it: pass --force to do it',
      name,
    );
  }
  return { name, key, yes: values.yes === true };
}

function intervalOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_INTERVAL_SECONDS * 1000;
  const seconds = Number(value);
  const ms = Math.ceil(seconds * 1000);
  if (value.trim() === '' || !(ms > 0 && ms <= MAX_DURATION_MS)) {
    throw new UsageError(
      `--interval expects seconds above 0 and at most ${MAX_DURATION_MS / 1000}, got '${value}'`,
      'watch',
    );
  }
  return ms;
}

function targetOf(
  values: Values,
  env: Readonly<Record<string, string | undefined>>,
  command: CommandName,
): Target {
  const usage = (message: string) => new UsageError(message, command);
  const { prefix, table, schema } = values;
  const seeds = values.cluster?.flatMap((list) => list.split(',')).filter((seed) => seed !== '');
  if (values.cluster !== undefined && values.url !== undefined) {
    throw usage('--url and --cluster each name a backend: pass one of them');
  }
  const redisOnly = () => {
    if (table !== undefined || schema !== undefined) {
      throw usage('--table and --schema are for PostgreSQL; a Redis backend takes --prefix');
    }
  };
  if (seeds !== undefined) {
    if (seeds.length === 0) throw usage('--cluster expects host:port of a seed node');
    redisOnly();
    const urls = seeds.map((seed) => clusterSeed(seed, usage));
    if (new Set(urls.map(schemeOf)).size > 1) {
      throw usage('--cluster seeds are all redis:// or all rediss://, not a mix');
    }
    return { kind: 'cluster', seeds: urls, prefix };
  }
  const [source, url] = urlOf(values.url, env, usage);
  const scheme = schemeOf(url);
  if (scheme === 'redis:' || scheme === 'rediss:') {
    redisOnly();
    return { kind: 'redis', url, prefix };
  }
  if (scheme === 'postgres:' || scheme === 'postgresql:') {
    if (prefix !== undefined) {
      throw usage('--prefix is for Redis; a PostgreSQL backend takes --table and --schema');
    }
    return { kind: 'postgres', url, table, schema };
  }
  throw usage(`${source} must start with redis://, rediss://, postgres:// or postgresql://`);
}

/** The URL to use and where it came from (`--url` or an environment variable). */
function urlOf(
  url: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  usage: (message: string) => UsageError,
): [string, string] {
  if (url !== undefined) return ['--url', url];
  const redis = env.REDIS_URL || undefined;
  const postgres = env.POSTGRES_URL || undefined;
  if (redis !== undefined && postgres !== undefined) {
    throw usage('REDIS_URL and POSTGRES_URL are both set: pass --url to say which backend to use');
  }
  if (redis !== undefined) return ['REDIS_URL', redis];
  if (postgres !== undefined) return ['POSTGRES_URL', postgres];
  throw usage(
    'no backend given: pass --url (redis://…, rediss://… or postgres://…) or --cluster host:port, or set REDIS_URL or POSTGRES_URL',
  );
}

function schemeOf(url: string): string | undefined {
  return /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0].toLowerCase();
}

/** A seed of `--cluster` as a URL: `host:port` means `redis://host:port`. */
function clusterSeed(seed: string, usage: (message: string) => UsageError): string {
  const url = seed.includes('://') ? seed : `redis://${seed}`;
  const scheme = schemeOf(url);
  if ((scheme === 'redis:' || scheme === 'rediss:') && URL.canParse(url)) return url;
  throw usage(
    `--cluster expects host:port, redis://host:port or rediss://host:port, got '${seed}'`,
  );
}
