import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Where a {@link FaultProxy} forwards to. */
export interface FaultProxyTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * A TCP proxy on loopback that forwards every connection to one target and injects network
 * faults on command: latency, dropped connections, and a blackhole that holds all traffic.
 * Between the clients and a Redis server it shows what the clients do when the network, not the
 * server, misbehaves. With no fault set it passes bytes through unchanged.
 */
export interface FaultProxy extends AsyncDisposable {
  /** `redis://127.0.0.1:port`: give this to clients instead of the server's URL. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Connections open through the proxy now. */
  readonly connections: number;
  /** Bytes received and not yet forwarded (delayed by latency or held by a blackhole). */
  readonly heldBytes: number;
  /**
   * Delays every chunk by `ms` in each direction (so a request and its reply take at least
   * `2 * ms` more), keeping the order of bytes. Applies to chunks that arrive from now on; `0`
   * ends the fault.
   */
  setLatency(ms: number): void;
  /**
   * Resets every open connection at once (RST to the client, close to the target), dropping
   * whatever was held, as a failing link or a restarted middlebox would. New connections are
   * accepted as before.
   */
  dropConnections(): void;
  /**
   * Stops forwarding in both directions, for open and new connections alike: bytes are held, not
   * lost, as TCP would hold them across a partition that heals before it times out. Lasts until
   * {@link FaultProxy.heal}, or `durationMs` when given.
   */
  blackhole(durationMs?: number): void;
  /** Ends a blackhole: held bytes go out in order (after any latency still set). */
  heal(): void;
  /** Closes every connection and the listener. */
  close(): Promise<void>;
}

/** Options of {@link startFaultProxy}. */
export interface StartFaultProxyOptions {
  /**
   * Port to listen on; a free one by default. A fixed port lets clients reconnect to the same
   * address after the proxy was closed and started again.
   * @default 0
   */
  port?: number | undefined;
}

/** One direction of one connection: delivers chunks in order once due and not held. */
class Lane {
  readonly #queue: { chunk: Buffer; due: number }[] = [];
  readonly #destination: Socket;
  readonly #proxy: ProxyState;
  #timer: NodeJS.Timeout | undefined;
  #lastDue = 0;
  heldBytes = 0;

  constructor(destination: Socket, proxy: ProxyState) {
    this.#destination = destination;
    this.#proxy = proxy;
  }

  push(chunk: Buffer): void {
    const now = Date.now();
    if (this.#queue.length === 0 && this.#proxy.latencyMs === 0 && !this.#proxy.blackholed) {
      this.#destination.write(chunk);
      return;
    }
    // Never earlier than a chunk before it: latency lowered mid-stream must not reorder bytes.
    const due = Math.max(now + this.#proxy.latencyMs, this.#lastDue);
    this.#lastDue = due;
    this.#queue.push({ chunk, due });
    this.heldBytes += chunk.length;
    this.flush();
  }

  /** Sends what is due, then waits for the next chunk's due time (unless held). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#proxy.blackholed) return;
    const now = Date.now();
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as { chunk: Buffer; due: number };
      if (next.due > now) {
        this.#timer = setTimeout(() => this.flush(), next.due - now);
        return;
      }
      this.#queue.shift();
      this.heldBytes -= next.chunk.length;
      if (!this.#destination.destroyed) this.#destination.write(next.chunk);
    }
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
    this.heldBytes = 0;
  }
}

interface ProxyState {
  latencyMs: number;
  blackholed: boolean;
}

interface Link {
  client: Socket;
  upstream: Socket;
  lanes: [Lane, Lane];
}

/**
 * Starts a {@link FaultProxy} on 127.0.0.1 in front of `target` (a `RedisServer` works as is).
 * Each client connection opens its own connection to the target; faults apply to all of them.
 *
 * @param target - host and port to forward to
 * @param options - see {@link StartFaultProxyOptions}
 * @example
 * ```ts
 * await using redis = await startRedis();
 * await using proxy = await startFaultProxy(redis);
 * const client = new Redis(proxy.url);
 * proxy.setLatency(50);   // every request now takes 100 ms more
 * proxy.blackhole(2_000); // nothing gets through for 2 s, then everything held is delivered
 * proxy.dropConnections(); // the client sees ECONNRESET and reconnects
 * ```
 */
export async function startFaultProxy(
  target: FaultProxyTarget,
  options: StartFaultProxyOptions = {},
): Promise<FaultProxy> {
  const state: ProxyState = { latencyMs: 0, blackholed: false };
  const links = new Set<Link>();
  let healTimer: NodeJS.Timeout | undefined;

  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = createConnection({ host: target.host, port: target.port, noDelay: true });
    const link: Link = {
      client,
      upstream,
      lanes: [new Lane(upstream, state), new Lane(client, state)],
    };
    links.add(link);
    client.on('data', (chunk: Buffer) => link.lanes[0].push(chunk));
    upstream.on('data', (chunk: Buffer) => link.lanes[1].push(chunk));
    // Either side ending ends the link: a target that went away looks, to the client, like a
    // server that closed its connection.
    const end = () => {
      if (!links.delete(link)) return;
      for (const lane of link.lanes) lane.clear();
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  const heal = () => {
    clearTimeout(healTimer);
    healTimer = undefined;
    state.blackholed = false;
    for (const link of links) for (const lane of link.lanes) lane.flush();
  };

  const close = async () => {
    clearTimeout(healTimer);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const link of [...links]) {
      link.client.destroy();
      link.upstream.destroy();
    }
    await closed;
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    get connections() {
      return links.size;
    },
    get heldBytes() {
      let bytes = 0;
      for (const link of links) for (const lane of link.lanes) bytes += lane.heldBytes;
      return bytes;
    },
    setLatency(ms: number) {
      if (!(Number.isFinite(ms) && ms >= 0)) {
        throw new RangeError(
          `[deadbolt] [testing] latency must be a finite number >= 0, got ${ms}`,
        );
      }
      state.latencyMs = ms;
    },
    dropConnections() {
      for (const link of [...links]) {
        links.delete(link);
        for (const lane of link.lanes) lane.clear();
        link.client.resetAndDestroy();
        link.upstream.destroy();
      }
    },
    blackhole(durationMs?: number) {
      state.blackholed = true;
      clearTimeout(healTimer);
      healTimer = durationMs === undefined ? undefined : setTimeout(heal, durationMs);
    },
    heal,
    close,
    [Symbol.asyncDispose]: close,
  };
}
