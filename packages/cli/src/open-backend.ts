import { ClusterBackend } from '@deadbolt/cluster';
import {
  BackendError,
  type InspectionCapability,
  InvalidArgumentError,
  type ListingCapability,
  type LockBackend,
  type WakeUpCapability,
} from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { PostgresBackend } from '@deadbolt/postgres';
import type { Target } from './args.js';

/** What the commands use of a backend: inspection and listing, release, and wake-ups if it has them. */
export interface CliBackend {
  readonly inspection: InspectionCapability;
  readonly listing: ListingCapability;
  readonly wakeUps?: WakeUpCapability | undefined;
  release: LockBackend['release'];
}

/** A backend on a connection of its own, and how to close both. */
export interface OpenedBackend {
  backend: CliBackend;
  /** Closes the backend and its connections. Never rejects. */
  close(): Promise<void>;
}

/** How long connecting may take before the command fails with exit code 2. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects to the backend `target` names and checks that it answers. Options are validated
 * before any connection is made (a bad `--prefix` throws `InvalidArgumentError`); a backend that
 * cannot be reached rejects with `BackendError`.
 *
 * The clients never retry: a command that cannot reach the backend fails at once instead of
 * waiting in an offline queue.
 */
export function openBackend(target: Target): Promise<OpenedBackend> {
  if (target.kind === 'redis') return openRedis(target.url, target.prefix);
  if (target.kind === 'cluster') return openCluster(target.seeds, target.prefix);
  return openPostgres(target.url, target.table, target.schema);
}

async function openRedis(url: string, prefix: string | undefined): Promise<OpenedBackend> {
  const { Redis } = await import('ioredis');
  const where = withoutPassword(url);
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  const failure = lastError(client);
  let backend: IoredisBackend;
  try {
    backend = new IoredisBackend(client, prefix === undefined ? {} : { prefix });
    await client.connect();
  } catch (error) {
    // disconnect() on a client that ended already would hold the process up for seconds.
    if (client.status !== 'end') client.disconnect();
    throw connectError(error, failure(), where);
  }
  return {
    backend,
    close: async () => {
      await backend.close();
      // Nothing is in flight once a command is done; QUIT would wait on a server that went away.
      client.disconnect();
    },
  };
}

async function openCluster(seeds: string[], prefix: string | undefined): Promise<OpenedBackend> {
  const { Cluster } = await import('ioredis');
  const urls = seeds.map((seed) => new URL(seed));
  const where = seeds.map(withoutPassword).join(',');
  const first = urls[0] as URL;
  const cluster = new Cluster(
    urls.map((url) => ({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 6379),
    })),
    {
      lazyConnect: true,
      clusterRetryStrategy: () => null,
      redisOptions: {
        connectTimeout: CONNECT_TIMEOUT_MS,
        ...(first.username !== '' && { username: decodeURIComponent(first.username) }),
        ...(first.password !== '' && { password: decodeURIComponent(first.password) }),
        ...(first.protocol === 'rediss:' && { tls: {} }),
      },
    },
  );
  // Without a listener ioredis prints its errors; connect() says what went wrong.
  cluster.on('error', () => undefined);
  let backend: ClusterBackend;
  try {
    backend = new ClusterBackend(cluster, prefix === undefined ? {} : { prefix });
    await cluster.connect();
  } catch (error) {
    if (cluster.status !== 'end') cluster.disconnect();
    throw connectError(error, undefined, where);
  }
  return {
    backend,
    close: async () => {
      await backend.close();
      cluster.disconnect();
    },
  };
}

async function openPostgres(
  url: string,
  table: string | undefined,
  schema: string | undefined,
): Promise<OpenedBackend> {
  const { default: pg } = await import('pg');
  const where = withoutPassword(url);
  // One connection for queries, one to LISTEN on while `watch` waits.
  const pool = new pg.Pool({
    connectionString: url,
    max: 2,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'deadbolt-cli',
  });
  // An idle connection that breaks is reported by the next query.
  pool.on('error', () => undefined);
  let backend: PostgresBackend;
  try {
    backend = new PostgresBackend(pool, {
      ...(table !== undefined && { table }),
      ...(schema !== undefined && { schema }),
    });
    await assertTable(pool, table ?? 'deadbolt_locks', schema, where);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error instanceof BackendError ? error : connectError(error, undefined, where);
  }
  return {
    backend,
    close: async () => {
      await backend.close();
      await pool.end().catch(() => undefined);
    },
  };
}

/**
 * The backend would create its tables on first use: a tool that only looks must not, so a
 * missing table (most likely a wrong `--table`, `--schema` or database) is an error here.
 */
async function assertTable(
  pool: { query(text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[] }> },
  table: string,
  schema: string | undefined,
  where: string,
): Promise<void> {
  const name = schema === undefined ? `"${table}"` : `"${schema}"."${table}"`;
  const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS found', [name]);
  if (rows[0]?.found !== true) {
    throw new BackendError(
      `no table ${name} at ${where}`,
      new Error('check --table, --schema and the database'),
    );
  }
}

/** Remembers the last `error` event of a client: it says more than a failed `connect()`. */
function lastError(client: {
  on(event: 'error', listener: (error: Error) => void): unknown;
}): () => Error | undefined {
  let last: Error | undefined;
  client.on('error', (error) => {
    last = error;
  });
  return () => last;
}

function connectError(error: unknown, reason: unknown, where: string): unknown {
  // Bad options (`--prefix`, `--table`) are the caller's to report as usage errors.
  if (error instanceof InvalidArgumentError) return error;
  return new BackendError(`cannot connect to ${where}`, reason ?? error);
}

/** `url` with its password replaced by `***`, for messages. */
function withoutPassword(url: string): string {
  if (!URL.canParse(url)) return url.replace(/\/\/[^@/]*@/, '//***@');
  const parsed = new URL(url);
  if (parsed.password === '') return url;
  parsed.password = '***';
  return parsed.toString();
}
