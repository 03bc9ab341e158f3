import type { RedisClientSettings, RedisTestClients } from '@deadbolt/testing/conformance';
import {
  type BaseClientConfiguration,
  GlideClient,
  GlideClusterClient,
  ProtocolVersion,
  RequestError,
} from '@valkey/valkey-glide';

/** A GLIDE client of either kind, as the suites handle it. */
type Glide = GlideClient | GlideClusterClient;

/** The GLIDE options that `settings` ask for, on `url`'s host and port. */
function configurationOf(url: string, settings: RedisClientSettings): BaseClientConfiguration {
  const { hostname, port } = new URL(url);
  const { connectionName, failFast, variant } = settings;
  return {
    addresses: [{ host: hostname, port: Number(port) }],
    // GLIDE gives up on a command after 250 ms by default, which a script can take on a loaded
    // machine running a cluster of six servers (the README says to raise it); commands that must
    // fail fast while the server is down keep that default.
    ...(!failFast && { requestTimeout: 5_000 }),
    ...(connectionName !== undefined && { clientName: connectionName }),
    ...(variant === 'lazyConnect' && { lazyConnect: true }),
    ...(variant === 'RESP2' && { protocol: ProtocolVersion.RESP2 }),
  };
}

/**
 * A client made by `create`; when nothing answers at `url` (creating fails then), a lazily
 * connecting one instead, whose commands fail, as the suites expect of such a client.
 */
async function connected<Client>(
  create: (configuration: BaseClientConfiguration) => Promise<Client>,
  configuration: BaseClientConfiguration,
): Promise<Client> {
  try {
    return await create(configuration);
  } catch {
    return create({ ...configuration, lazyConnect: true });
  }
}

/** How the suites handle a GLIDE client once made. */
const handling = {
  library: 'valkey-glide',
  ping: (client: Glide) => client.ping(),
  // A GLIDE client reconnects by itself, for ever (its connectionBackoff only spaces the
  // attempts): it never gives up, so there is nothing to connect again.
  canGiveUp: false,
  reconnect: async () => undefined,
  close: (client: Glide) => client.close(),
  ReplyError: RequestError,
};

/**
 * `GlideClient`s for the Redis suites, with the variants `'lazyConnect'` and `'RESP2'` (the
 * user's client on RESP2; the backend's subscriber is on RESP3 whatever the user's protocol).
 */
export const glideTestClients: RedisTestClients<GlideClient> = {
  ...handling,
  connect: (url, settings = {}) =>
    connected(
      (configuration) => GlideClient.createClient(configuration),
      configurationOf(url, settings),
    ),
  variants: ['lazyConnect', 'RESP2'],
};

/** `GlideClusterClient`s for the Redis suites, with the variant `'RESP2'`. */
export const glideClusterTestClients: RedisTestClients<GlideClusterClient> = {
  ...handling,
  topology: 'cluster',
  connect: (url, settings = {}) =>
    connected(
      (configuration) => GlideClusterClient.createClient(configuration),
      configurationOf(url, settings),
    ),
  variants: ['RESP2'],
};
