/**
 * The contract between deadbolt's lock algorithm and a store of leases. A backend is three
 * methods, `acquire`, `extend` and `release`, plus the optional capabilities it declares as
 * members (`queue`, `wakeUps`, `handoff`, `fences`, `inspection`, `listing`) and `close`.
 * `LockManager` and `quorum()` use nothing else, and the conformance suite of
 * `@deadbolt/testing` checks the rules below, running the topics of each capability a backend
 * declares (`runBackendConformance`). Waiting, backoff, auto-extension and quorum live in core.
 *
 * Rules every backend keeps; the conformance topic that checks each is in brackets.
 *
 * 1. Validation [bad input, misuse]. Every method first checks its request with the matching
 *    helper of `@deadbolt/core` (`assertAcquireRequest`, `assertExtendRequest`,
 *    `assertReleaseRequest`, `assertQueuedAcquireRequest`, `assertWaitRequest`,
 *    `assertGrantWaitRequest`, `assertAdvanceFenceRequest`, `assertInspectRequest`,
 *    `assertListRequest`), before any I/O. Bad input rejects with their `InvalidArgumentError`
 *    (naming the argument as `request.<field>`); a method that returns a promise never throws.
 * 2. Mutual exclusion [acquire, semaphore, read-write]. A key's unexpired holders never hold more
 *    permits (the sum of their `weight`s) than the `limit` of the request being granted. Each
 *    request is judged by its own `limit`; callers use one limit per key.
 * 3. Fences [fencing]. Every grant's `fence` is a positive safe integer strictly greater than
 *    every fence granted on that key before, across holders, after all its leases expired, and
 *    after `fences.advance`. deadbolt's backends take `max(last + 1, now in µs)`, so fences keep
 *    increasing even after the store forgot a key. A store that forgets keys may forget one only
 *    once that clock floor has passed its last fence: keep a free key's fence for longer than the
 *    clock's resolution plus any step back the clock can make (`now * 1000` of a millisecond clock
 *    repeats within that millisecond), and never forget one advanced past the clock.
 * 4. Expiry [expiry]. A lease ends `ttlMs` after the backend granted or extended it, by the
 *    backend's own clock (never a client's): from then on its holder counts for nothing and
 *    `extend` answers false. The granted `ttlMs` is what was asked, rounded up to the store's
 *    resolution at most (deadbolt's backends keep whole milliseconds), never more.
 * 5. Ownership [ownership]. `extend` and `release` act on the lease of the given token only;
 *    any other token gets `false` and changes nothing.
 * 6. Asking again [acquire]. A token that holds and asks again is granted again, past any queue,
 *    as long as its own lease does not count against it: its earlier reply may have been lost.
 *    The new grant replaces its lease, with a new fence. When it does not fit (it asks for more
 *    weight than is free), it is refused; a queued request then takes or renews its place like
 *    any other, and may be handed the lock later.
 * 7. Failures [misuse]. A store that cannot be reached rejects with `BackendError`, the driver's
 *    error as `cause`; after `close()`, every method rejects with `BackendError`.
 * 8. Data, not code [security]. Keys and tokens are data of any content (quotes, delimiters,
 *    braces, NUL, up to `MAX_KEY_BYTES`): two different keys never share a lock. Nothing a backend
 *    returns or throws prints a token: inspection results pass through `hideTokens`.
 *
 * @module
 */

/** What one acquisition asks of a backend. */
export interface AcquireRequest {
  /** The lock's key, as the user named it (backends add their own namespace). */
  key: string;
  /** 128-bit random token that identifies this acquisition; ownership checks compare it. */
  token: string;
  /**
   * Lease length in milliseconds, judged by the backend's own clock: at least 1 (`MIN_TTL_MS`).
   * deadbolt's backends keep whole milliseconds and round a fraction up.
   */
  ttlMs: number;
  /** Permits the key has in all: 1 for a mutex, n for a semaphore of n. */
  limit: number;
  /** Permits this acquisition takes, from 1 to `limit`. */
  weight: number;
  /**
   * A label for people who look at the lock (`LockManager`'s `owner`, by default host name and
   * process id), stored with the lease and shown by `inspection`. Never used to decide anything.
   */
  owner?: string;
}

/** A granted acquisition. */
export interface AcquireGranted {
  ok: true;
  /** Fencing token: strictly greater than every fence granted before on this key. */
  fence: number;
  /** The lease granted, in milliseconds: what was asked, rounded up to the store's resolution. */
  ttlMs: number;
}

/** A refused acquisition. */
export interface AcquireRefused {
  ok: false;
  /** Hint: milliseconds until a permit may free up (for example the earliest holder's remaining lease). */
  retryInMs?: number;
}

/** The answer to an {@link AcquireRequest}. */
export type AcquireResult = AcquireGranted | AcquireRefused;

/** Asks to reset the lease of `token` on `key`. */
export interface ExtendRequest {
  /** The lock's key. */
  key: string;
  /** The token that acquired it. */
  token: string;
  /** New lease length in milliseconds, counted from now on the backend's clock (at least 1). */
  ttlMs: number;
}

/** Asks to give back what `token` holds on `key`, and its queue place if it has one. */
export interface ReleaseRequest {
  /** The lock's key. */
  key: string;
  /** The token that acquired it. */
  token: string;
}

/**
 * The storage primitive every deadbolt backend implements: three methods, and the optional
 * capabilities it declares. See the rules at the top of this module.
 *
 * @example
 * ```ts
 * class MyBackend implements LockBackend {
 *   async acquire(request: AcquireRequest): Promise<AcquireResult> {
 *     assertAcquireRequest(request);
 *     // take request.weight of request.limit permits for request.token, atomically
 *   }
 *   // extend, release; then capabilities as members, for example:
 *   readonly fences: FenceCapability = { advance: (request) => this.#advance(request) };
 * }
 * ```
 */
export interface LockBackend {
  /** Atomically take `weight` of `limit` permits on `key` for `token`, for `ttlMs`. */
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  /** Reset the lease of `token` on `key` to `ttlMs` from now; false if `token` no longer holds. */
  extend(request: ExtendRequest): Promise<boolean>;
  /** Give back what `token` holds on `key` (and its queue place); false if it held nothing. */
  release(request: ReleaseRequest): Promise<boolean>;
  /** Waiters queue in one order: fair waits, and a waiting writer blocks new readers [fair]. */
  readonly queue?: QueueCapability;
  /** Waiters hear of releases instead of polling [wake-up]. */
  readonly wakeUps?: WakeUpCapability;
  /** A release grants the lock to the head of the queue and tells it [handoff]. Needs `queue`. */
  readonly handoff?: HandoffCapability;
  /** Fences can be made to count past a given one, which `quorum()` needs [fencing]. */
  readonly fences?: FenceCapability;
  /** Who holds a key now, for operators and tools [inspection]. */
  readonly inspection?: InspectionCapability;
  /** Which keys are locked or waited for now, a page at a time [listing]. */
  readonly listing?: ListingCapability;
  /**
   * Free what the backend opened itself (a subscriber connection; never the user's client); then
   * every method rejects with `BackendError` (after validating its request, rule 1), and so do
   * pending waits [misuse]. Calling it again resolves. `new BackendError(message, cause)` takes
   * any `cause`: after `close()` there is no driver error to give.
   */
  close?(): Promise<void>;
}

/**
 * An arrival-order queue per key. Rules [fair]: a queued request takes a place (or renews its
 * own, which keeps its position) and is granted only at the head of the queue, when it fits; an
 * unqueued `acquire` is refused while another token's place is at the head (so a waiting writer
 * blocks new readers), unless its token holds (rule 6); a place runs out `placeTtlMs` after it
 * was last renewed, and then counts for nothing; `release` gives up the token's place too,
 * letting those behind it move up; a grant removes the place.
 */
export interface QueueCapability {
  /** `acquire`, also taking or renewing `token`'s place in `key`'s queue. */
  acquire(request: QueuedAcquireRequest): Promise<AcquireResult>;
}

/** An {@link AcquireRequest} that waits its turn (see {@link QueueCapability}). */
export interface QueuedAcquireRequest extends AcquireRequest {
  /**
   * How long the place lasts without being renewed, in ms. Every attempt renews it; a waiter that
   * stops attempting (it died or gave up) drops out when it runs out.
   */
  placeTtlMs: number;
  /**
   * Where a new place goes: places are ordered by this number (then by token) instead of by
   * when they reached the backend. `quorum()` gives every member the same one, so that all agree
   * on who is first. A backend that has `queue` honours it, and orders a place that came without
   * one by its arrival in the same unit, epoch microseconds (`quorum()` gives
   * `max(last + 1, Date.now() * 1000)`), so that both kinds compare.
   */
  order?: number;
  /**
   * Asks to be handed the lock on release (see {@link HandoffCapability}); ignored by a backend
   * without `handoff`.
   */
  handoff?: HandoffRequest;
}

/** What a queued request asks for in case the lock is handed to it. */
export interface HandoffRequest {
  /**
   * Which request of this acquisition (same token) this is, counting from 1. A grant names the
   * attempt whose place it went to, so the waiter can tell a grant meant for an earlier attempt,
   * whose lease may have ended since, from one meant for its latest.
   */
  attempt: number;
  /**
   * The lease to grant on a handoff, at most `ttlMs`. `LockManager` asks for a short one and
   * extends it once the waiter holds the lock, so a waiter that died while queued holds up those
   * behind it for this long at most, whatever TTL it asked for.
   */
  ttlMs: number;
}

/** Tells waiters when a key may have been released. Rules [wake-up] on {@link WakeUpCapability.waitForRelease}. */
export interface WakeUpCapability {
  /**
   * Resolves when `key` may have been released since `since` (a release that came while the
   * caller was busy attempting resolves it at once). It means only "ask again": the key may be
   * held again by then, and a backend may also wake a wait spuriously (when it begins to listen,
   * say). A lease that runs out need not wake anyone: the refusal's `retryInMs` bounds how long
   * the caller sleeps. Rejects with `signal.reason` when aborted, with `BackendError` when the
   * backend cannot listen.
   */
  waitForRelease(request: WaitRequest): Promise<void>;
}

/** Asks to be told when a key may have been released. */
export interface WaitRequest {
  /** The lock's key. */
  key: string;
  /** Aborting it ends the wait, which rejects with `signal.reason`. */
  signal: AbortSignal;
  /**
   * When the caller's last attempt started (`Date.now()` of the caller's process): a release the
   * backend learned of after it, by the same clock, while the caller was busy attempting,
   * resolves the wait at once.
   */
  since?: number;
}

/**
 * Hands a freed lock to the head of the queue. Rules [handoff]: when a release gives back a
 * lease or a queue place, the backend grants the places at the head of the queue, in order,
 * exactly as if it had answered each one's request with a grant of `handoff.ttlMs`; it stops at
 * the first place that did not ask for a handoff, did not renew within the last half of its
 * `placeTtlMs` (its waiter may have died), or does not fit. It tells only that token's wait for
 * that attempt, or keeps the news for a wait that comes later; it never delivers a grant to a
 * later attempt than the one it answered. The others hear of the release only when the handoffs
 * left permits free.
 */
export interface HandoffCapability {
  /**
   * Resolves with the grant when the lock was (or had been, while the caller was attempting)
   * handed to `token`'s `attempt`; resolves `null` when `key` may have been released without a
   * handoff to it (ask again). Rejects like {@link WakeUpCapability.waitForRelease}.
   */
  waitForGrant(request: GrantWaitRequest): Promise<HandedOff | null>;
}

/** Asks to be told of a handoff to one attempt (see {@link HandoffCapability}). */
export interface GrantWaitRequest extends WaitRequest {
  /** The waiting acquisition's token. */
  token: string;
  /** The {@link HandoffRequest.attempt} of its latest request. */
  attempt: number;
}

/** A grant the backend made to a waiting request when the lock freed up. */
export interface HandedOff extends AcquireGranted {
  /** The {@link HandoffRequest.attempt} of the request whose queue place was handed the lock. */
  attempt: number;
  /**
   * Milliseconds, by the backend's clock, from when that attempt reached the backend to the grant,
   * rounded down: the lease began at least this long after that attempt was sent.
   */
  afterMs: number;
}

/** Makes fences count past a given one. Rules [fencing]. */
export interface FenceCapability {
  /** Makes every later fence of `key` exceed `fence` (`quorum()` writes its winning fence back). */
  advance(request: AdvanceFenceRequest): Promise<void>;
}

/** Asks that every later fence of `key` be greater than `fence`. */
export interface AdvanceFenceRequest {
  /** The lock's key. */
  key: string;
  /** A fence granted elsewhere (by another member of a quorum). */
  fence: number;
}

/** Shows who holds a key. Rules [inspection]. */
export interface InspectionCapability {
  /**
   * The key's unexpired holders, its last fence and how many wait in its queue; null when nobody
   * holds it. Passed through `hideTokens`, so printing it never shows a token.
   */
  inspect(request: InspectRequest): Promise<LockInfo | null>;
}

/** Asks what a backend knows about one key. */
export interface InspectRequest {
  /** The lock's key. */
  key: string;
}

/** One current holder of a key, as inspection tools show it. */
export interface HolderInfo {
  /** The holder's token; printed forms hide it (see `hideTokens`). */
  token: string;
  /** Permits this holder has. */
  weight: number;
  /** Milliseconds left on its lease, by the backend's clock. */
  ttlMs: number;
  /** The {@link AcquireRequest.owner} it gave, if any. */
  owner?: string;
}

/** What a backend knows about one key. */
export interface LockInfo {
  /** The key. */
  key: string;
  /** Current, unexpired holders. */
  holders: HolderInfo[];
  /** The last fence granted on this key (0 if none yet). */
  fence: number;
  /** Waiters holding a place in the key's queue, when the backend has `queue`. */
  queued?: number;
}

/**
 * Lists locked keys. Rules [listing]: a page holds keys that had an unexpired holder or queue
 * place when it was read, each once per page; following `cursor` until it is null visits every
 * key that stayed locked throughout (keys locked or freed meanwhile may or may not show). Each
 * page costs work bounded by `count`, never a scan of the whole store in one call (no `KEYS`); a
 * `cursor` the backend did not give may be refused with `InvalidArgumentError`.
 */
export interface ListingCapability {
  /** One page of locked keys matching `match`. */
  list(request: ListRequest): Promise<ListPage>;
}

/** Asks for a page of locked keys. */
export interface ListRequest {
  /**
   * Only keys matching this glob: `*` any run of characters, `?` one character, `\` quotes the
   * next. @default '*'
   */
  match?: string;
  /** Where to go on: the `cursor` of the previous page; absent for the first. */
  cursor?: string;
  /** About how many keys to look at for this page (a hint). @default 100 */
  count?: number;
}

/** One page of {@link ListingCapability.list}. */
export interface ListPage {
  /** Keys with a holder or a queue place, as the user named them. */
  keys: string[];
  /** Pass it to get the next page; null when the listing is complete. */
  cursor: string | null;
}
