/**
 * An in-process backend with the semantics of the Redis backends.
 *
 * @module @deadbolt/memory
 */
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
  type ExtendRequest,
  type FenceCapability,
  globToRegExp,
  type HandedOff,
  type HandoffCapability,
  type HolderInfo,
  hideTokens,
  type InspectionCapability,
  type InspectRequest,
  InvalidArgumentError,
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
  whenAborted,
} from '@deadbolt/core';

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * Milliseconds since the epoch, read on every operation. Inject one to drive expiry by hand.
   * @default () => Date.now() (so vitest's and sinon's fake timers drive it)
   */
  clock?: () => number;
}

interface Holder {
  weight: number;
  expiresAt: number;
  owner: string | undefined;
  /** A grant handed to this token on release that its waiter has not picked up yet. */
  undelivered?: HandedOff;
}

interface Place {
  /** Where it stands in the queue: places are kept sorted by it (then by token). */
  order: number;
  /** When the place runs out unless renewed. */
  deadline: number;
  /** When the last request renewed it. */
  renewedAt: number;
  /** What to grant it on release, when it asked for a handoff, and which attempt asked. */
  handoff?: {
    ttlMs: number;
    weight: number;
    limit: number;
    attempt: number;
    owner: string | undefined;
  };
}

interface KeyState {
  holders: Map<string, Holder>;
  /** Queued tokens in queue order (a Map keeps insertion order; see `#enqueue`). */
  queue: Map<string, Place>;
  /** Last fence granted (or advanced to) on this key. */
  fence: number;
}

/** When an event happened: epoch ms, and its place among all events of the backend. */
interface Stamp {
  at: number;
  seq: number;
}

/** A pending wait: for a grant to one token's attempt, or (without `grantee`) for any release. */
interface Waiter {
  grantee?: { token: string; attempt: number };
  settle(error?: unknown, handedOff?: HandedOff): void;
}

/**
 * Keys the sweep looks at per operation (see `#sweep`). More than one, the most keys an operation
 * can add, so that a round over every key ends and dead keys cannot pile up.
 */
const SWEEP_PER_CALL = 2;

/**
 * How long a refusal and a release are remembered: a refused caller that waits right after
 * (`since`) must hear of a release that came in between. In one process that gap is microseconds.
 */
const RECENT_MS = 5_000;

/**
 * Leases kept in this process's memory: the backend to swap in for unit tests, with the same
 * permits, fences, expiry, queue, wake-ups and handoffs as the Redis backends (not a mock), and
 * every capability of the backend contract. Like Redis, it keeps a key only while someone holds
 * it or queues for it, and its fences still increase after that.
 *
 * @example
 * ```ts
 * const locks = new LockManager({ backend: new MemoryBackend() });
 * await using lock = await locks.acquire('job:1');
 * ```
 */
export class MemoryBackend implements LockBackend {
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

  readonly #clock: () => number;
  /** Only keys with a live holder or queue place, give or take what the sweep has yet to visit. */
  readonly #keys = new Map<string, KeyState>();
  /**
   * The highest fence of every key this backend forgot. A key starts from here when it is used
   * again, so its fences keep increasing even when the clock stands still (an injected clock,
   * fake timers), where the clock floor of the fence would not.
   */
  #forgottenFence = 0;
  /** Where the sweep of dead keys resumes. */
  #sweepCursor: Iterator<[string, KeyState]> = this.#keys.entries();
  readonly #waiters = new Map<string, Set<Waiter>>();
  /**
   * When a key was last asked for (once it refused someone), and when it last woke its waiters
   * after that (`Date.now()`, like a wait's `since`), oldest first, for {@link RECENT_MS}: only
   * keys someone may wait for are remembered, so a backend that releases many keys nobody waits
   * for keeps nothing.
   */
  readonly #askedAt = new Map<string, Stamp>();
  readonly #releasedAt = new Map<string, Stamp>();
  /** Orders stamps taken in the same millisecond (or under a clock that stands still). */
  #stamps = 0;
  /** Orders new places by arrival: microseconds of the clock, kept strictly increasing. */
  #lastArrival = 0;
  #closed = false;

  constructor(options: MemoryBackendOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'expected an object');
    }
    for (const name of Object.keys(options)) {
      if (name !== 'clock') throw new InvalidArgumentError(`options.${name}`, 'unknown option');
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new InvalidArgumentError('options.clock', 'expected a function returning epoch ms');
    }
    this.#clock = options.clock ?? (() => Date.now());
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    assertAcquireRequest(request);
    this.#assertOpen();
    const now = this.#clock();
    return this.#acquire(request, this.#live(request.key, now), now);
  }

  async #acquireQueued(request: QueuedAcquireRequest): Promise<AcquireResult> {
    assertQueuedAcquireRequest(request);
    this.#assertOpen();
    const { key, token, limit, weight, handoff, owner } = request;
    const now = this.#clock();
    const state = this.#live(key, now);
    this.#enqueue(state, token, {
      order: state.queue.get(token)?.order ?? request.order ?? this.#arrival(now),
      deadline: now + Math.ceil(request.placeTtlMs),
      renewedAt: now,
      ...(handoff && {
        handoff: {
          ttlMs: Math.ceil(handoff.ttlMs),
          weight,
          limit,
          attempt: handoff.attempt,
          owner,
        },
      }),
    });
    return this.#acquire(request, state, now);
  }

  /** Grants `request` if it fits and has passed the queue (a place it has is at the head). */
  #acquire(request: AcquireRequest, state: KeyState, now: number): AcquireResult {
    const { key, token, limit, weight, owner } = request;
    // Whole milliseconds, rounded up, as the Redis backends store them.
    const ttlMs = Math.ceil(request.ttlMs);
    // A token that already holds (its earlier reply was lost) replaces its own grant.
    const { used, earliestExpiry } = usage(state, token);
    const head = state.queue.keys().next().value;
    // Queued requests go in queue order; unqueued ones yield to anyone queued. A holder asking
    // again (its reply or its handoff was lost) has already passed the queue.
    const passedQueue = head === undefined || head === token || state.holders.has(token);
    if (used + weight > limit || !passedQueue) {
      this.#stamp(this.#askedAt, key);
      return Number.isFinite(earliestExpiry)
        ? { ok: false, retryInMs: Math.max(1, earliestExpiry - now) }
        : { ok: false };
    }
    state.queue.delete(token);
    if (this.#askedAt.has(key)) this.#stamp(this.#askedAt, key);
    const fence = this.#grant(state, token, { weight, expiresAt: now + ttlMs, owner }, now);
    // The next in line may fit in what is left: let it try now rather than at its next retry.
    if (state.queue.size > 0 && used + weight < limit) this.#wake(key);
    return { ok: true, fence, ttlMs };
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    assertExtendRequest(request);
    this.#assertOpen();
    const now = this.#clock();
    const state = this.#live(request.key, now);
    const holder = state.holders.get(request.token);
    if (holder === undefined) {
      this.#forgetIfDead(request.key, state);
      return false;
    }
    holder.expiresAt = now + Math.ceil(request.ttlMs);
    return true;
  }

  async release(request: ReleaseRequest): Promise<boolean> {
    assertReleaseRequest(request);
    this.#assertOpen();
    const now = this.#clock();
    const state = this.#live(request.key, now);
    const released = state.holders.delete(request.token);
    // Giving up a queue place also lets the ones behind move up.
    const leftQueue = state.queue.delete(request.token);
    if (released || leftQueue) {
      // Waiters hear of the release unless it went, whole, to those at the head of the queue.
      if (!this.#handOff(request.key, state, now)) this.#wake(request.key);
    }
    this.#forgetIfDead(request.key, state);
    return released;
  }

  async #advanceFence(request: AdvanceFenceRequest): Promise<void> {
    assertAdvanceFenceRequest(request);
    this.#assertOpen();
    const state = this.#live(request.key, this.#clock());
    state.fence = Math.max(state.fence, request.fence);
    // On a free key, the fence lives on in #forgottenFence.
    this.#forgetIfDead(request.key, state);
  }

  /**
   * Resolves on the next release of `key` (at once for one since `request.since`); for a
   * `grantee`, resolves with the grant when the lock was handed to that token's attempt (also
   * one handed over before this call).
   */
  #wait(
    request: WaitRequest,
    assertRequest: () => void,
    grantee?: Waiter['grantee'],
  ): Promise<HandedOff | undefined> {
    return new Promise((resolve, reject) => {
      assertRequest();
      const { key, signal, since } = request;
      if (signal.aborted) return reject(signal.reason);
      if (this.#closed) return reject(closedError());
      const holder = grantee && this.#keys.get(key)?.holders.get(grantee.token);
      const handedOff = holder?.undelivered;
      if (holder && handedOff) {
        delete holder.undelivered;
        // A grant for an earlier attempt is stale (that attempt's refusal came after it), and one
        // whose lease already ran out is no news: the waiter asks again.
        if (handedOff.attempt === grantee.attempt && holder.expiresAt > this.#clock()) {
          return resolve(handedOff);
        }
      }
      if (since !== undefined && this.#releasedSince(key, since)) return resolve(undefined);
      const waitersOfKey = getOrCreate(this.#waiters, key, () => new Set<Waiter>());
      const waiter: Waiter = {
        ...(grantee && { grantee }),
        settle: (error, handedOff) => {
          waitersOfKey.delete(waiter);
          if (waitersOfKey.size === 0 && this.#waiters.get(key) === waitersOfKey) {
            this.#waiters.delete(key);
          }
          stopListening();
          if (error === undefined) resolve(handedOff);
          else reject(error);
        },
      };
      waitersOfKey.add(waiter);
      const stopListening = whenAborted(signal, () => waiter.settle(signal.reason));
    });
  }

  async #inspect(request: InspectRequest): Promise<LockInfo | null> {
    assertInspectRequest(request);
    this.#assertOpen();
    const { key } = request;
    const now = this.#clock();
    const state = this.#live(key, now);
    if (state.holders.size === 0) {
      this.#forgetIfDead(key, state);
      return null;
    }
    const holders = [...state.holders].map(
      ([token, holder]): HolderInfo => ({
        token,
        weight: holder.weight,
        ttlMs: holder.expiresAt - now,
        ...(holder.owner !== undefined && { owner: holder.owner }),
      }),
    );
    return hideTokens({ key, holders, fence: state.fence, queued: state.queue.size });
  }

  /** Locked keys in code-unit order, each page starting after the last key of the one before. */
  async #list(request: ListRequest): Promise<ListPage> {
    assertListRequest(request);
    this.#assertOpen();
    const { match = '*', cursor, count = 100 } = request;
    const pattern = globToRegExp(match);
    const now = this.#clock();
    const locked = [...this.#keys]
      .filter(([key, state]) => {
        if ((cursor !== undefined && key <= cursor) || !pattern.test(key)) return false;
        prune(state, now);
        return state.holders.size > 0 || state.queue.size > 0;
      })
      .map(([key]) => key)
      .sort((a, b) => (a < b ? -1 : 1));
    const keys = locked.slice(0, count);
    return { keys, cursor: locked.length > count ? (keys.at(-1) as string) : null };
  }

  /** Rejects every waiter and refuses further calls; leases are dropped with the process. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiters of this.#waiters.values()) {
      for (const waiter of [...waiters]) waiter.settle(closedError());
    }
    this.#waiters.clear();
  }

  /**
   * The key's state with expired holders pruned, as the Redis scripts prune them. Every
   * operation comes here first, so this is also where the sweep runs; it runs before the lookup
   * so that it cannot forget the state this operation is about to change.
   */
  #live(key: string, now: number): KeyState {
    this.#sweep(now);
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = { holders: new Map(), queue: new Map(), fence: this.#forgottenFence };
      this.#keys.set(key, state);
    } else {
      prune(state, now);
    }
    return state;
  }

  /**
   * Puts (or renews) `token`'s place. A renewal keeps its order and so its position; a new place
   * goes where its order puts it, which is last unless the request gave an order of its own.
   */
  #enqueue(state: KeyState, token: string, place: Place): void {
    const { queue } = state;
    const last = [...queue].at(-1);
    if (queue.has(token) || last === undefined || before(last[1], last[0], place, token)) {
      queue.set(token, place);
      return;
    }
    const entries = [...queue, [token, place] as const];
    entries.sort(([tokenA, a], [tokenB, b]) => (before(a, tokenA, b, tokenB) ? -1 : 1));
    queue.clear();
    for (const [queuedToken, queuedPlace] of entries) queue.set(queuedToken, queuedPlace);
  }

  /** A new place's order by arrival: the clock in microseconds, strictly above the last one. */
  #arrival(now: number): number {
    this.#lastArrival = Math.max(this.#lastArrival + 1, now * 1000);
    return this.#lastArrival;
  }

  /**
   * Drops `key` once nobody holds it or queues for it, as Redis drops a hash whose last field
   * went: a backend that kept every key it ever saw would grow without end. Its fence is kept in
   * #forgottenFence.
   */
  #forgetIfDead(key: string, state: KeyState): void {
    if (state.holders.size > 0 || state.queue.size > 0) return;
    this.#forgottenFence = Math.max(this.#forgottenFence, state.fence);
    this.#keys.delete(key);
  }

  /**
   * Forgets the keys whose leases and queue places all ran out, looking at a few per operation
   * in a round over all keys that resumes where the last operation stopped, like Redis's active
   * expiry (which samples keys with a TTL every 100 ms). A key is otherwise forgotten only when
   * an operation on it finds it dead, and a key nobody asks about again would stay forever. (A
   * timer per lease would cost more than the lease it watches.) Refusals and releases older than
   * {@link RECENT_MS} go too.
   */
  #sweep(now: number): void {
    for (let visited = 0; visited < SWEEP_PER_CALL; visited++) {
      let next = this.#sweepCursor.next();
      if (next.done) {
        // A Map iterator that finished stays finished: start the next round.
        this.#sweepCursor = this.#keys.entries();
        next = this.#sweepCursor.next();
        if (next.done) break;
      }
      const [key, state] = next.value;
      prune(state, now);
      this.#forgetIfDead(key, state);
    }
    const forgetBefore = Date.now() - RECENT_MS;
    for (const stamps of [this.#askedAt, this.#releasedAt]) {
      for (const [key, { at }] of stamps) {
        if (at >= forgetBefore) break;
        stamps.delete(key);
      }
    }
  }

  /** Records a grant to `token` and returns its fence. */
  #grant(state: KeyState, token: string, holder: Holder, now: number): number {
    state.holders.set(token, holder);
    // Same rule as the Redis scripts: never below the clock in microseconds, always above the last.
    state.fence = Math.max(state.fence + 1, Math.floor(now * 1000));
    return state.fence;
  }

  /**
   * Grants the lock to the head of the queue, and the next, for as long as they asked for a
   * handoff, renewed their place within the last half of its TTL (a waiter that stopped renewing
   * may have died) and fit. Returns true when it handed some over and left nothing free.
   */
  #handOff(key: string, state: KeyState, now: number): boolean {
    let limit: number | undefined;
    for (const [token, place] of state.queue) {
      const { handoff } = place;
      if (handoff === undefined || now - place.renewedAt > (place.deadline - place.renewedAt) / 2) {
        break;
      }
      if (usage(state).used + handoff.weight > handoff.limit) break;
      limit = handoff.limit;
      state.queue.delete(token);
      const { ttlMs, weight, attempt, owner } = handoff;
      const fence = this.#grant(state, token, { weight, expiresAt: now + ttlMs, owner }, now);
      const handedOff: HandedOff = {
        ok: true,
        fence,
        ttlMs,
        afterMs: now - place.renewedAt,
        attempt,
      };
      const grantee = [...(this.#waiters.get(key) ?? [])].find(
        (waiter) => waiter.grantee?.token === token && waiter.grantee.attempt === attempt,
      );
      if (grantee) grantee.settle(undefined, handedOff);
      else (state.holders.get(token) as Holder).undelivered = handedOff;
    }
    return limit !== undefined && usage(state).used >= limit;
  }

  /** Wakes every wait on `key`, remembering when for waits that come right after. */
  #wake(key: string): void {
    if (this.#askedAt.has(key)) this.#stamp(this.#releasedAt, key);
    const waiters = this.#waiters.get(key);
    if (waiters === undefined) return;
    for (const waiter of [...waiters]) waiter.settle();
  }

  /**
   * Whether `key` woke its waiters after `since` (a wait's epoch ms): in a later millisecond, or in
   * that one after anyone last asked for it, so that a clock standing still (fake timers) cannot
   * wake a waiter again and again for one release, nor for one that a later request has seen.
   */
  #releasedSince(key: string, since: number): boolean {
    const released = this.#releasedAt.get(key);
    if (released === undefined || released.at < since) return false;
    return released.at > since || released.seq > (this.#askedAt.get(key)?.seq ?? 0);
  }

  /** Notes that `key` had its event now, keeping the map in time order (see `#sweep`). */
  #stamp(stamps: Map<string, Stamp>, key: string): void {
    stamps.delete(key);
    stamps.set(key, { at: Date.now(), seq: ++this.#stamps });
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }
}

/** Drops the holders and queue places of `state` whose time ran out by `now`. */
function prune(state: KeyState, now: number): void {
  for (const [token, holder] of state.holders) {
    if (holder.expiresAt <= now) state.holders.delete(token);
  }
  for (const [token, place] of state.queue) {
    if (place.deadline <= now) state.queue.delete(token);
  }
}

/** Permits held on `state` by every token but `except`, and when the first of those leases ends. */
function usage(state: KeyState, except?: string): { used: number; earliestExpiry: number } {
  let used = 0;
  let earliestExpiry = Number.POSITIVE_INFINITY;
  for (const [holderToken, holder] of state.holders) {
    if (holderToken === except) continue;
    used += holder.weight;
    earliestExpiry = Math.min(earliestExpiry, holder.expiresAt);
  }
  return { used, earliestExpiry };
}

/** Whether place `a` of `tokenA` stands before place `b` of `tokenB`: by order, then by token. */
function before(a: Place, tokenA: string, b: Place, tokenB: string): boolean {
  return a.order < b.order || (a.order === b.order && tokenA < tokenB);
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

function closedError(): BackendError {
  return new BackendError('[memory] the backend is closed', new Error('closed'));
}
