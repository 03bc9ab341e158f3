import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { isPublishedMessage, NotRespError, RespFrames } from './resp-frames.js';

/** Where a {@link FaultProxy} forwards to. */
export interface FaultProxyTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * Faults on whole pub/sub messages that the server sends (see {@link FaultProxy.setMessageFaults}).
 * Each message gets one uniform draw from `random`: below `drop` it is dropped, below `drop +
 * duplicate` delivered twice, below `drop + duplicate + delay` delayed; the three shares add up
 * to at most 1.
 */
export interface MessageFaults {
  /**
   * Share of messages dropped, from 0 to 1.
   * @default 0
   */
  drop?: number | undefined;
  /**
   * Share of messages delivered twice in a row, from 0 to 1.
   * @default 0
   */
  duplicate?: number | undefined;
  /**
   * Share of messages delayed by `delayMs`, from 0 to 1. Bytes keep their order, as on a TCP
   * connection: whatever the server sends after a delayed message waits behind it.
   * @default 0
   */
  delay?: number | undefined;
  /**
   * How long a delayed message is held, in milliseconds.
   * @default 0
   */
  delayMs?: number | undefined;
  /**
   * Uniform numbers in [0, 1) that decide each message's fate; a seeded source repeats the same
   * decisions for the same sequence of messages.
   * @default Math.random
   */
  random?: (() => number) | undefined;
}

/** Pub/sub messages that {@link MessageFaults} dropped, duplicated and delayed so far. */
export interface MessageFaultCounts {
  readonly dropped: number;
  readonly duplicated: number;
  readonly delayed: number;
}

/**
 * A TCP proxy on loopback that forwards every connection to one target and injects network
 * faults on command: latency, dropped connections, a blackhole that holds all traffic, and faults
 * on single pub/sub messages (dropped, duplicated, delayed). Between the clients and a Redis
 * server it shows what the clients do when the network, not the server, misbehaves. With no
 * fault set it passes bytes through unchanged.
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
  /**
   * Drops, duplicates or delays whole pub/sub messages (`message`, `pmessage`, `smessage`) on
   * their way from the server to the clients, from now on; every other reply and the client's
   * own traffic pass untouched. Meant for subscriber connections: on any other, a command reply
   * shaped like a message (an LRANGE of those words) would be hit too. `undefined` ends the fault.
   *
   * @param faults - see {@link MessageFaults}
   */
  setMessageFaults(faults: MessageFaults | undefined): void;
  /** Messages hit by {@link FaultProxy.setMessageFaults} since the proxy started. */
  readonly messageFaults: MessageFaultCounts;
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

  /** Sends `chunk` on once the latency and `delayMs` on top of it have passed, in order. */
  push(chunk: Buffer, delayMs = 0): void {
    const now = Date.now();
    const wait = this.#proxy.latencyMs + delayMs;
    if (this.#queue.length === 0 && wait === 0 && !this.#proxy.blackholed) {
      this.#destination.write(chunk);
      return;
    }
    // Never earlier than a chunk before it: latency lowered mid-stream must not reorder bytes.
    const due = Math.max(now + wait, this.#lastDue);
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
  /** The message faults in force; undefined when none. */
  messageFaults: ResolvedMessageFaults | undefined;
  counts: { dropped: number; duplicated: number; delayed: number };
}

interface Link {
  client: Socket;
  upstream: Socket;
  lanes: [Lane, Lane];
  /**
   * What the server sent, cut into whole replies so that a message can be hit as a whole;
   * undefined once the traffic turned out not to be RESP (it then passes as plain bytes).
   */
  replies: RespFrames | undefined;
}

/** Passes what the server sent to the client's lane, hitting whole messages as `state` says. */
function forwardReplies(link: Link, chunk: Buffer, state: ProxyState): void {
  const lane = link.lanes[1];
  if (link.replies === undefined) {
    lane.push(chunk);
    return;
  }
  let frames: Buffer[];
  try {
    frames = link.replies.push(chunk);
  } catch (error) {
    if (!(error instanceof NotRespError)) throw error;
    link.replies = undefined;
    lane.push(chunk);
    return;
  }
  if (frames.length === 0) return;
  const faults = state.messageFaults;
  if (faults === undefined) {
    lane.push(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
    return;
  }
  for (const frame of frames) {
    if (!isPublishedMessage(frame)) {
      lane.push(frame);
      continue;
    }
    const draw = faults.random();
    if (draw < faults.drop) {
      state.counts.dropped += 1;
    } else if (draw < faults.drop + faults.duplicate) {
      state.counts.duplicated += 1;
      lane.push(frame);
      lane.push(frame);
    } else if (draw < faults.drop + faults.duplicate + faults.delay) {
      state.counts.delayed += 1;
      lane.push(frame, faults.delayMs);
    } else {
      lane.push(frame);
    }
  }
}

/** {@link MessageFaults} with every member checked and filled in. */
interface ResolvedMessageFaults {
  drop: number;
  duplicate: number;
  delay: number;
  delayMs: number;
  random: () => number;
}

/** `faults` checked and filled in; undefined when it hits no message at all. */
function resolveMessageFaults(
  faults: MessageFaults | undefined,
): ResolvedMessageFaults | undefined {
  if (faults === undefined) return undefined;
  const share = (name: 'drop' | 'duplicate' | 'delay'): number => {
    const value = faults[name] ?? 0;
    if (!(Number.isFinite(value) && value >= 0 && value <= 1)) {
      throw new RangeError(
        `[deadbolt] [testing] message fault ${name} must be a share from 0 to 1, got ${value}`,
      );
    }
    return value;
  };
  const resolved: ResolvedMessageFaults = {
    drop: share('drop'),
    duplicate: share('duplicate'),
    delay: share('delay'),
    delayMs: faults.delayMs ?? 0,
    random: faults.random ?? Math.random,
  };
  if (resolved.drop + resolved.duplicate + resolved.delay > 1) {
    throw new RangeError('[deadbolt] [testing] message fault shares add up to more than 1');
  }
  if (!(Number.isFinite(resolved.delayMs) && resolved.delayMs >= 0)) {
    throw new RangeError(
      `[deadbolt] [testing] message delayMs must be a finite number >= 0, got ${resolved.delayMs}`,
    );
  }
  const hitsAny = resolved.drop + resolved.duplicate + resolved.delay > 0;
  return hitsAny ? resolved : undefined;
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
 * proxy.setMessageFaults({ drop: 0.1, delay: 0.1, delayMs: 500 }); // pub/sub messages only
 * ```
 */
export async function startFaultProxy(
  target: FaultProxyTarget,
  options: StartFaultProxyOptions = {},
): Promise<FaultProxy> {
  const state: ProxyState = {
    latencyMs: 0,
    blackholed: false,
    messageFaults: undefined,
    counts: { dropped: 0, duplicated: 0, delayed: 0 },
  };
  const links = new Set<Link>();
  let healTimer: NodeJS.Timeout | undefined;

  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = createConnection({ host: target.host, port: target.port, noDelay: true });
    const link: Link = {
      client,
      upstream,
      lanes: [new Lane(upstream, state), new Lane(client, state)],
      replies: new RespFrames(),
    };
    links.add(link);
    client.on('data', (chunk: Buffer) => link.lanes[0].push(chunk));
    upstream.on('data', (chunk: Buffer) => forwardReplies(link, chunk, state));
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
    setMessageFaults(faults: MessageFaults | undefined) {
      state.messageFaults = resolveMessageFaults(faults);
    },
    get messageFaults() {
      return { ...state.counts };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
