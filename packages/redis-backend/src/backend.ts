import {
  type AcquireRequest,
  type AcquireResult,
  type AdvanceFenceRequest,
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertExtendRequest,
  assertGrantWaitRequest,
  assertInspectRequest,
  assertListRequest,
  assertQueuedAcquireRequest,
  assertReleaseRequest,
  assertWaitRequest,
  BackendError,
  DeadboltError,
  type ExtendRequest,
  type FenceCapability,
  type HandedOff,
  type HandoffCapability,
  hideTokens,
  type InspectionCapability,
  type InspectRequest,
  type ListingCapability,
  type ListPage,
  type ListRequest,
  type LockBackend,
  type LockInfo,
  type QueueCapability,
  type QueuedAcquireRequest,
  type ReleaseRequest,
  type WaitRequest,
  type WakeUpCapability,
} from '@deadbolt/core';
import { EvictionGuard } from './eviction.js';
import { lockKey, type RedisBackendOptions } from './keys.js';
import { type ListingSource, type LockServer, listPage, readCursor } from './listing.js';
import { type ReleaseSubscriber, ReleaseWaiters } from './release-waiters.js';
import { array, integers, toInteger, toText } from './replies.js';
import { runScript, type ScriptTransport, scripts } from './scripts.js';

/** How a release reaches waiters: classic pub/sub, or sharded pub/sub on a Redis 7 Cluster. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/** A subscriber connection the backend opened itself, and so closes itself. */
export interface OwnedSubscriber extends ReleaseSubscriber {
  /** Closes the connection. */
  close(): Promise<void>;
}

/** What an adapter supplies: how to run scripts and how to listen for releases on its client. */
export interface RedisConnection {
  /** The client library, for error messages: `ioredis`, `node-redis`, `cluster`. */
  readonly name: string;
  /** Runs scripts on the user's client. */
  readonly transport: ScriptTransport;
  /**
   * Opens the one dedicated subscriber connection, the first time a waiter needs it. The
   * subscriber follows the user's client: opening one for a client that is closed fails, and
   * `onClientEnd` runs once when the client ends (quit, closed, destroyed, or given up
   * reconnecting) while the subscriber is open, so the backend closes the subscriber too and
   * never keeps the process alive after the user closed their client. `close()` stops listening.
   */
  openSubscriber(onClientEnd: () => void): Promise<OwnedSubscriber>;
  /** @default 'PUBLISH' */
  readonly publishCommand?: PublishCommand;
  /**
   * The client's own key prefix (`keyPrefix` of ioredis and node-redis 6), which it adds to the
   * KEYS of every script, so lock names on the server start with it: listing looks for them so.
   * @default ''
   */
  readonly keyPrefix?: string;
  /**
   * Every server that stores locks, when there are several (the masters of a Cluster), each with
   * its address and a transport that runs a script (without keys) on it alone: the eviction check
   * asks each, and listing scans each. A cluster client that does not know its masters yet
   * learns them first.
   * @default the one server behind `transport`
   */
  readonly servers?: () => Promise<readonly LockServer[]>;
}

/**
 * A complete `LockBackend` on Redis: the deadbolt Lua scripts for storage, one lazily opened
 * subscriber shared by every waiter for wake-ups, listing by SCAN, and errors wrapped as
 * `BackendError`. Each adapter is this class with a constructor that turns the user's client into
 * a {@link RedisConnection} (`ioredisConnection`, `nodeRedisConnection` and their cluster kin).
 *
 * @example
 * ```ts
 * class MyClientBackend extends RedisBackend {
 *   constructor(client: MyClient, options?: RedisBackendOptions) {
 *     super(myClientConnection(client), resolveRedisBackendOptions(options));
 *   }
 * }
 * ```
 */
export class RedisBackend implements LockBackend {
  readonly queue: QueueCapability = { acquire: (request) => this.#acquireQueued(request) };
  readonly wakeUps: WakeUpCapability = {
    waitForRelease: (request) =>
      this.#wait(request, () => assertWaitRequest(request)).then(() => undefined),
  };
  readonly handoff: HandoffCapability = {
    waitForGrant: (request) =>
      this.#wait(request, () => assertGrantWaitRequest(request), {
        token: request.token,
        attempt: request.attempt,
      }).then((handedOff) => handedOff ?? null),
  };
  readonly fences: FenceCapability = { advance: (request) => this.#advanceFence(request) };
  readonly inspection: InspectionCapability = { inspect: (request) => this.#inspect(request) };
  readonly listing: ListingCapability = { list: (request) => this.#list(request) };
  readonly #transport: ScriptTransport;
  readonly #listing: ListingSource;
  readonly #prefix: string;
  readonly #publish: PublishCommand;
  readonly #name: string;
  readonly #waiters: ReleaseWaiters;
  readonly #eviction: EvictionGuard;
  #subscriber: Promise<OwnedSubscriber> | undefined;
  #closed = false;

  constructor(connection: RedisConnection, options: Required<RedisBackendOptions>) {
    this.#transport = connection.transport;
    this.#prefix = options.prefix;
    this.#publish = connection.publishCommand ?? 'PUBLISH';
    this.#name = connection.name;
    this.#eviction = new EvictionGuard(options.evictionCheck, connection);
    const { servers, transport, keyPrefix = '' } = connection;
    this.#listing = {
      namePrefix: `${keyPrefix}${options.prefix}:{`,
      servers: servers ?? (async () => [{ address: '', transport }]),
    };
    const subscriber = () => {
      if (this.#subscriber !== undefined) return this.#subscriber;
      const opening = connection.openSubscriber(() => this.#clientEnded(opening));
      this.#subscriber = opening;
      // A failed open is retried by the next waiter rather than remembered forever.
      opening.catch(() => {
        if (this.#subscriber === opening) this.#subscriber = undefined;
      });
      return opening;
    };
    this.#waiters = new ReleaseWaiters({
      subscribe: async (channel, onMessage) => {
        // A subscribe queued behind others may start after close(): it must not reopen.
        this.#assertOpen();
        await (await subscriber()).subscribe(channel, onMessage);
      },
      // Unsubscribing never opens a connection: without one there is nothing to undo.
      unsubscribe: async (channel) => {
        const open = this.#subscriber;
        if (open !== undefined) await (await open).unsubscribe(channel);
      },
    });
  }

  /** The Redis name of `key`'s lock: the hash that holds it, and the channel of its releases. */
  lockKey(key: string): string {
    return lockKey(this.#prefix, key);
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    return this.#acquire(request, this.#argsOf(request));
  }

  async #acquireQueued(request: QueuedAcquireRequest): Promise<AcquireResult> {
    assertQueuedAcquireRequest(request);
    return this.#acquire(request, this.#argsOf(request, request));
  }

  /** The arguments of acquire.lua: a plain mutex sends only token, TTL and owner. */
  #argsOf(request: AcquireRequest, queued?: QueuedAcquireRequest): string[] {
    const { token, ttlMs, owner = '', limit, weight } = request;
    const args = [token, String(Math.ceil(ttlMs)), owner];
    if (queued === undefined && limit === 1 && weight === 1 && this.#publish === 'PUBLISH') {
      return args;
    }
    const handoff = queued?.handoff;
    args.push(
      String(limit),
      String(weight),
      String(queued ? Math.ceil(queued.placeTtlMs) : 0),
      this.#publish,
      String(handoff ? Math.ceil(handoff.ttlMs) : 0),
      String(handoff?.attempt ?? 0),
      String(queued?.order ?? 0),
    );
    return args;
  }

  async #acquire(request: AcquireRequest, args: readonly string[]): Promise<AcquireResult> {
    this.#assertOpen();
    if (!this.#eviction.passed) await this.#eviction.check(this.lockKey(request.key));
    const reply = await this.#run(scripts.acquire, [this.lockKey(request.key)], args);
    const [granted, first, second] = integers(reply, 'acquire');
    if (granted === 1) return { ok: true, fence: first ?? 0, ttlMs: second ?? request.ttlMs };
    return first === undefined || first < 0 ? { ok: false } : { ok: false, retryInMs: first };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    this.#assertOpen();
    const reply = await this.#run(
      scripts.extend,
      [this.lockKey(request.key)],
      [request.token, String(Math.ceil(request.ttlMs))],
    );
    return toInteger(reply, 'extend') === 1;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    this.#assertOpen();
    const args = this.#publish === 'PUBLISH' ? [request.token] : [request.token, this.#publish];
    const reply = await this.#run(scripts.release, [this.lockKey(request.key)], args);
    return toInteger(reply, 'release') === 1;
  }

  async #advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    this.#assertOpen();
    await this.#run(scripts.advanceFence, [this.lockKey(request.key)], [String(request.fence)]);
  }

  /**
   * Resolves on the next release of `key` reported through pub/sub, or at once if one came after
   * `request.since` while the caller was not listening; for a `grantee`, resolves with the grant
   * when a release handed the lock to that attempt. Rejects on abort or close.
   */
  #wait(
    request: WaitRequest,
    assertRequest: () => void,
    grantee?: { token: string; attempt: number },
  ): Promise<HandedOff | undefined> {
    try {
      // Before any subscription: a bad signal must not leave a channel subscribed.
      assertRequest();
    } catch (error) {
      return Promise.reject(error);
    }
    const { key, signal, since } = request;
    return this.#waiters.wait(this.lockKey(key), signal, since, grantee).catch((error: unknown) => {
      throw error === signal.reason ? error : this.#wrap(error, `waiting for "${key}"`);
    });
  }

  /** Closes the subscriber this backend opened (never the user's client) and rejects waiters. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close(this.#closedError());
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    await subscriber?.then((owned) => owned.close()).catch(() => undefined);
  }

  /**
   * The user's client ended under the subscriber `opening`: close it too, so that nothing of the
   * backend keeps the process alive, and fail the waiters, who would otherwise wait on a
   * connection nobody can use. Not a close: a later wait opens a subscriber again if the client
   * is connected again by then, and fails at once if it is not.
   */
  #clientEnded(opening: Promise<OwnedSubscriber>): void {
    if (this.#subscriber !== opening) return;
    this.#subscriber = undefined;
    // Waits wrap it: `[ioredis] waiting for "key": the client was closed …`.
    this.#waiters.reset(
      new Error(
        'the client was closed (quit, close, destroy, or it gave up reconnecting); connect it again to lock',
      ),
    );
    opening.then((owned) => owned.close()).catch(() => undefined);
  }

  async #inspect(request: InspectRequest): Promise<LockInfo | null> {
    assertInspectRequest(request);
    this.#assertOpen();
    const { key } = request;
    const reply = await this.#run(scripts.inspect, [this.lockKey(key)], []);
    const [lastFence, queued, ...rest] = array(reply, 'inspect');
    const info: LockInfo = { key, holders: [], fence: toInteger(lastFence, 'inspect') };
    for (let index = 0; index + 3 < rest.length; index += 4) {
      const owner = toText(rest[index + 3]);
      info.holders.push({
        token: toText(rest[index]),
        weight: toInteger(rest[index + 1], 'inspect'),
        ttlMs: toInteger(rest[index + 2], 'inspect'),
        ...(owner !== '' && { owner }),
      });
    }
    if (info.holders.length === 0) return null;
    return hideTokens({ ...info, queued: toInteger(queued, 'inspect') });
  }

  async #list(request: ListRequest): Promise<ListPage> {
    assertListRequest(request);
    const at = readCursor(request.cursor);
    this.#assertOpen();
    return listPage(this.#listing, request, at).catch((error: unknown) => {
      throw this.#wrap(error, 'list failed');
    });
  }

  /** Runs a script; client and connection failures become `BackendError`s naming the client. */
  #run(
    script: (typeof scripts)[keyof typeof scripts],
    keys: readonly string[],
    args: readonly string[],
  ): Promise<unknown> {
    // A plain promise chain, not an async function: one hop less on every reply.
    return runScript(this.#transport, script, keys, args).catch((error: unknown) => {
      throw this.#wrap(error, `${script.name} failed`);
    });
  }

  #wrap(error: unknown, what: string): DeadboltError {
    if (error instanceof DeadboltError) return error;
    return new BackendError(`[${this.#name}] ${what}`, error);
  }

  #closedError(): BackendError {
    return new BackendError(`[${this.#name}] the backend is closed`, new Error('closed'));
  }

  #assertOpen(): void {
    if (this.#closed) throw this.#closedError();
  }
}
