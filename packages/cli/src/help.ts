import { type CommandName, DEFAULT_INTERVAL_SECONDS } from './args.js';

const BACKEND = `Backend (one of --url and --cluster, else $REDIS_URL or $POSTGRES_URL):
  --url <url>            redis://, rediss:// (TLS) or postgres:// URL
  --cluster <host:port>  seed node of a Redis Cluster (redis://… or rediss://… too);
                         repeat it or separate with commas for several
  --prefix <prefix>      the Redis backend's key prefix (default: deadbolt)
  --table <name>         the PostgreSQL backend's table (default: deadbolt_locks)
  --schema <name>        the PostgreSQL backend's schema (default: the search_path's)`;

const OUTPUT = `Output:
  --json                 JSON for scripts, shapes documented in the README; no tokens, ever
  -h, --help             this help`;

const EXIT_CODES = `Exit codes: 0 ok, 1 usage error, 2 backend unreachable or failing,
3 not locked or nothing to release, 4 declined at the prompt, 130 interrupted.`;

const HELP: Record<CommandName | 'deadbolt', string> = {
  deadbolt: `deadbolt: look at and clear deadbolt locks on Redis, a Redis Cluster or PostgreSQL.

Usage: deadbolt <command> [options]

Commands:
  list [pattern]         locked keys matching a glob, with their holders
  inspect <key>          the holders of one key, its fence and its queue
  watch <key>            inspect a key again whenever it is released, until Ctrl-C
  release <key> --force  release every current holder of a key, after asking

Run 'deadbolt <command> --help' for more on one command.

${BACKEND}

${OUTPUT}
  -V, --version          the version

${EXIT_CODES}
`,
  list: `Usage: deadbolt list [pattern] [options]

Lists the keys that are locked or waited for now, with their holders: one row per key with
its number of holders, their owners, the permits they hold, the lease time they have left,
the key's last fence and how many wait in its queue. The pattern is a glob: * matches any
run of characters, ? one character, \\ quotes the next (default: *). Keys are read a page at
a time (SCAN on Redis), never all at once.

Example:
  deadbolt list 'invoice:*' --url redis://localhost:6379

${BACKEND}

${OUTPUT}

${EXIT_CODES}
`,
  inspect: `Usage: deadbolt inspect <key> [options]

Shows one key: its last fence, how many wait in its queue, and each holder's owner, weight
and lease time left. Exits with 3 when nobody holds the key.

Example:
  deadbolt inspect invoice:42 --url postgres://localhost/app --json

${BACKEND}

${OUTPUT}

${EXIT_CODES}
`,
  watch: `Usage: deadbolt watch <key> [options]

Shows the key like inspect, and again whenever the backend announces a release of it, and
every --interval seconds besides (new holders and handoffs to waiters are announced to
nobody else). Runs until Ctrl-C, then exits with 0. On a terminal each view replaces the
last one; otherwise views follow each other (with --json, one line each).

Options:
  --interval <seconds>   time between refreshes without a release (default: ${DEFAULT_INTERVAL_SECONDS})

Example:
  deadbolt watch invoice:42 --cluster 10.0.0.1:7000

${BACKEND}

${OUTPUT}

${EXIT_CODES}
`,
  release: `Usage: deadbolt release <key> --force [--yes] [options]

Releases every current holder of the key, as if each had called release(): the next in its
queue gets the lock. The holders are not told; each may go on working until its next
extension fails, so only do this to a lock whose holders are gone or stuck, and let the
resource check fences. Shows the holders and asks for confirmation on a terminal; exits
with 3 when there is nothing to release, with 4 when the answer is not yes.

Options:
  --force                required: release holders that are not this process's
  -y, --yes              do not ask (needed when stdin is not a terminal)

Example:
  deadbolt release invoice:42 --force --url rediss://:secret@redis.internal:6380

${BACKEND}

${OUTPUT}

${EXIT_CODES}
`,
};

/** The help of `command`, or of `deadbolt` as a whole. */
export function helpText(command: CommandName | undefined): string {
  return HELP[command ?? 'deadbolt'];
}
