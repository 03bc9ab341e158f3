import { randomUUID } from 'node:crypto';
import { loadOptional } from './load-optional.js';
import { waitFor } from './processes.js';
import { isDockerAvailable } from './redis.js';

/** Where a test database comes from. */
export type PostgresProvider = 'external' | 'local' | 'testcontainers';

/** What {@link choosePostgresProvider} decides from, so the decision can be tested on any machine. */
export interface PostgresProviderFacts {
  /** A database to use as it is (`POSTGRES_URL` or the `url` option). */
  postgresUrl: string | undefined;
  /** Whether the local server ({@link LOCAL_POSTGRES_URL}) accepted a connection. */
  localServer: boolean;
  /** Whether a Docker engine seems reachable. */
  dockerAvailable: boolean;
}

/**
 * The server tried when `POSTGRES_URL` is not set: the local one, as its superuser, with no
 * password (trust authentication, or the password in `PGPASSWORD`).
 */
export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Decides where the test database comes from: the one `POSTGRES_URL` names, else a throwaway
 * database on the local server, else a `postgres:16-alpine` container through testcontainers.
 * Throws, saying what to install, when none is possible.
 *
 * @param facts - what the machine offers; {@link startPostgres} finds them out
 */
export function choosePostgresProvider(facts: PostgresProviderFacts): PostgresProvider {
  if (facts.postgresUrl) return 'external';
  if (facts.localServer) return 'local';
  if (facts.dockerAvailable) return 'testcontainers';
  throw new Error(
    `[deadbolt] [testing] no PostgreSQL to test against: nothing answered at ${LOCAL_POSTGRES_URL} ` +
      '(install and start postgresql with trust authentication for local connections), Docker ' +
      'is not running (with it, add testcontainers to your devDependencies), and POSTGRES_URL ' +
      'is not set to a database the tests may use',
  );
}

/** A database for tests; `stop()` drops it when the harness created it. */
export interface PostgresDatabase extends AsyncDisposable {
  /** `postgres://…/<database>`: give it to `new pg.Pool({ connectionString })`. */
  readonly url: string;
  /** The database's name. */
  readonly database: string;
  readonly provider: PostgresProvider;
  /**
   * Drops the database (or stops the container) the harness made; nothing for `external`. It
   * gives the database's connections up to 5 s to close (a pool's `end()` resolves before they
   * have), then drops it `WITH (FORCE)`, ending any a test left open.
   */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /**
   * Use this database as it is, instead of making one.
   * @default process.env.POSTGRES_URL
   */
  url?: string | undefined;
}

/** The slice of node-postgres (an optional peer dependency) the harness uses. */
interface PgClient {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
type PgModule = {
  Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient;
};

/** The slice of testcontainers (an optional peer dependency) the harness uses. */
interface Testcontainers {
  GenericContainer: new (
    image: string,
  ) => {
    withEnvironment(env: Record<string, string>): {
      withExposedPorts(port: number): {
        withWaitStrategy(strategy: unknown): { start(): Promise<StartedContainer> };
      };
    };
  };
  Wait: { forLogMessage(message: string, times: number): unknown };
}
interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  stop(): Promise<unknown>;
}

/**
 * A database for a test run. With `POSTGRES_URL` set, that database, used as it is; otherwise a
 * new database with a random name (`deadbolt_test_…`) on the local server at
 * {@link LOCAL_POSTGRES_URL}, which `stop()` drops, so tests never share data with what the
 * server already holds; without a local server, `postgres:16-alpine` in Docker through
 * testcontainers. node-postgres (`pg`) is loaded only here: the Redis harness does not need it.
 *
 * @param options - see {@link StartPostgresOptions}
 * @example
 * ```ts
 * let database: PostgresDatabase;
 * beforeAll(async () => { database = await startPostgres(); });
 * afterAll(() => database.stop());
 * // pool = new pg.Pool({ connectionString: database.url })
 * ```
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresDatabase> {
  const url = options.url ?? (process.env.POSTGRES_URL || undefined);
  const pg = url === undefined ? await loadPg() : undefined;
  const localServer = pg !== undefined && (await answers(pg, LOCAL_POSTGRES_URL));
  const provider = choosePostgresProvider({
    postgresUrl: url,
    localServer,
    dockerAvailable: url === undefined && !localServer && isDockerAvailable(),
  });
  if (provider === 'external') {
    const database = new URL(url as string).pathname.slice(1);
    return { url: url as string, database, provider, ...stopping(async () => undefined) };
  }
  if (provider === 'local') return throwawayDatabase(pg as PgModule, LOCAL_POSTGRES_URL, provider);
  const container = await startContainer();
  const server = `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
  const database = await throwawayDatabase(pg as PgModule, server, provider);
  return {
    ...database,
    ...stopping(async () => {
      await database.stop();
      await container.stop();
    }),
  };
}

/** Creates a database with a random name on the server at `serverUrl`; `stop()` drops it. */
async function throwawayDatabase(
  pg: PgModule,
  serverUrl: string,
  provider: PostgresProvider,
): Promise<PostgresDatabase> {
  const database = `deadbolt_test_${randomUUID().replaceAll('-', '')}`;
  await asAdmin(pg, serverUrl, (admin) => admin.query(`CREATE DATABASE "${database}"`));
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  let dropped: Promise<void> | undefined;
  const drop = () =>
    asAdmin(pg, serverUrl, async (admin) => {
      // A pool's end() resolves before its connections have closed, and a connection that FORCE
      // ends while it closes makes node-postgres emit 'error' on the pool: an uncaught exception
      // in a test whose pool has no listener. So connections get a while to end by themselves.
      await waitFor(
        `the connections to ${database} to close`,
        async () => (await connectionsTo(admin, database)) === 0,
        DROP_GRACE_MS,
      ).catch(() => undefined);
      // FORCE ends the connections a test left open (a pool it did not end), which would block it.
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    });
  return {
    url: url.toString(),
    database,
    provider,
    ...stopping(() => {
      dropped ??= drop();
      return dropped;
    }),
  };
}

function stopping(
  stop: () => Promise<void>,
): Pick<PostgresDatabase, 'stop' | typeof Symbol.asyncDispose> {
  return { stop, [Symbol.asyncDispose]: stop };
}

async function asAdmin(
  pg: PgModule,
  serverUrl: string,
  work: (admin: PgClient) => Promise<unknown>,
): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

/** How long `stop()` lets a throwaway database's connections end by themselves before dropping it. */
const DROP_GRACE_MS = 5_000;

/** The server's connections to `database`, other than `admin`'s own. */
async function connectionsTo(admin: PgClient, database: string): Promise<number> {
  const { rows } = await admin.query(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [database],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Whether the server at `url` accepts a connection within a second. */
async function answers(pg: PgModule, url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function loadPg(): Promise<PgModule> {
  const moduleName = 'pg';
  try {
    const loaded = await loadOptional<PgModule & { default?: PgModule }>(moduleName);
    return loaded.default ?? loaded;
  } catch (error) {
    throw new Error(
      '[deadbolt] [testing] startPostgres() needs node-postgres: add pg to your devDependencies',
      { cause: error },
    );
  }
}

async function startContainer(): Promise<StartedContainer> {
  const moduleName = 'testcontainers';
  let testcontainers: Testcontainers;
  try {
    testcontainers = await loadOptional<Testcontainers>(moduleName);
  } catch (error) {
    throw new Error(
      '[deadbolt] [testing] no local PostgreSQL and testcontainers is not installed: start ' +
        `postgresql (trusting local connections at ${LOCAL_POSTGRES_URL}), or add testcontainers ` +
        'to your devDependencies to run PostgreSQL in Docker, or set POSTGRES_URL',
      { cause: error },
    );
  }
  return new testcontainers.GenericContainer('postgres:16-alpine')
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withExposedPorts(5432)
    .withWaitStrategy(
      // The image starts the server twice (once to initialise); the second start is the real one.
      testcontainers.Wait.forLogMessage('database system is ready to accept connections', 2),
    )
    .start();
}
