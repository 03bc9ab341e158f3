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
   * Optional: take (or keep) a place in the key's queue for this many ms and be granted only at
   * its head. Fair locks and read-write writers queue; a request without a place is refused while
   * anyone queues, so a waiting writer blocks new readers. Every attempt renews the place; a
   * waiter that stops attempting (it died or gave up) drops out when it runs out.
   */
  queueTtlMs?: number;
  /**
   * Optional, with `queueTtlMs`: where a new place goes in the queue. Places are ordered by this
   * number (then by token) instead of by when they reached the backend. `quorum()` gives every
   * member the same one, so that all members agree on who is first.
   */
  queueOrder?: number;
  /**
   * Optional, with `queueTtlMs`: when the lock frees up while this request's place is at the head
   * of the queue, the backend may grant it then and there (a handoff) and report the grant to a
   * `waitForRelease` of this token and attempt, so the waiter need not ask again. A backend that
   * does not hand off ignores it; one that does holds the grant exactly as if it had answered
   * this request with it, for `handoff.ttlMs`.
   */
  handoff?: HandoffRequest;
}

/** What a queued request asks for in case the lock is handed to it (see {@link AcquireRequest.handoff}). */
export interface HandoffRequest {
  /**
   * Which request of this acquisition (same token) this is, counting from 1. A handoff names the
   * attempt whose place it went to, so the waiter can tell a grant meant for an earlier attempt,
   * whose lease may have ended since, from one meant for its latest.
   */
  attempt: number;
  /**
   * Lease to grant on a handoff, at most `ttlMs`. LockManager asks for a short one and extends it
   * once the waiter holds the lock, so a waiter that died while queued holds up the ones behind it
   * for this long only, whatever TTL it asked for.
   */
  ttlMs: number;
}

/** A granted acquisition. */
export interface AcquireGranted {
  ok: true;
  /** Fencing token: strictly greater than every fence granted before on this key. */
  fence: number;
  /** Lease actually granted, in milliseconds (may be less than asked, never more). */
  ttlMs: number;
}

/** A refused acquisition. */
export interface AcquireRefused {
  ok: false;
  /** Hint: milliseconds until a permit may free up (for example the earliest holder's remaining TTL). */
  retryInMs?: number;
}

/** The answer to an {@link AcquireRequest}. */
export type AcquireResult = AcquireGranted | AcquireRefused;

/** A grant the backend made to a waiting request when the lock freed up (see {@link AcquireRequest.handoff}). */
export interface HandedOff extends AcquireGranted {
  /** The {@link HandoffRequest.attempt} of the request whose queue place was handed the lock. */
  attempt: number;
  /**
   * Milliseconds, by the backend's clock, from when that attempt reached the backend to the grant,
   * rounded down: the lease started at least this long after that attempt was sent.
   */
  afterMs: number;
}

/** Asks to reset the lease of `token` on `key`. */
export interface ExtendRequest {
  /** The lock's key. */
  key: string;
  /** The token that acquired it. */
  token: string;
  /**
   * New lease length in milliseconds, counted from now on the backend's clock: at least 1, as in
   * {@link AcquireRequest.ttlMs}.
   */
  ttlMs: number;
}

/** Asks to give back what `token` holds on `key`. */
export interface ReleaseRequest {
  /** The lock's key. */
  key: string;
  /** The token that acquired it. */
  token: string;
}

/** Asks to be told when a key may have been released. */
export interface WaitRequest {
  /** The lock's key. */
  key: string;
  /** Aborting it ends the wait, which rejects with `signal.reason`. */
  signal: AbortSignal;
  /**
   * When the caller's last attempt started (`Date.now()`): a release the backend saw after it,
   * while the caller was busy attempting, resolves the wait at once.
   */
  since?: number;
  /** The token and attempt of a request that asked for a handoff, to be told of the grant. */
  handoff?: { token: string; attempt: number };
}

/** Asks that every later fence of `key` be greater than `fence`. */
export interface AdvanceFenceRequest {
  /** The lock's key. */
  key: string;
  /** A fence granted elsewhere (by another member of a quorum). */
  fence: number;
}

/** One current holder of a key, as inspection tools show it. */
export interface HolderInfo {
  /** The holder's token; tools hide it unless asked. */
  token: string;
  /** Permits this holder has. */
  weight: number;
  /** Milliseconds left on its lease, by the backend's clock. */
  ttlMs: number;
}

/** What a backend knows about one key. */
export interface LockInfo {
  /** The key. */
  key: string;
  /** Current, unexpired holders. */
  holders: HolderInfo[];
  /** The last fence granted on this key (0 if none yet). */
  fence: number;
  /** Waiters holding a place in the key's arrival-order queue, when the backend keeps one. */
  queued?: number;
}

/**
 * The storage primitive every deadbolt backend implements. Waiting, backoff,
 * auto-extension and quorum live in `@deadbolt/core`; a backend only stores leases.
 *
 * Every method checks its arguments before any I/O (`assertAcquireRequest` and its siblings) and
 * reports bad input as a promise rejected with `InvalidArgumentError`, never as a synchronous
 * throw: `LockManager` fires some calls without awaiting them, where a throw would escape.
 *
 * Run `runBackendConformance` from `@deadbolt/testing` to prove a new backend.
 */
export interface LockBackend {
  /** Atomically take `weight` of `limit` permits on `key` for `token`, for `ttlMs`. */
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  /** Reset the lease of `token` on `key` to `ttlMs`; false if `token` no longer holds it. */
  extend(request: ExtendRequest): Promise<boolean>;
  /** Give back what `token` holds on `key`; false if it held nothing. */
  release(request: ReleaseRequest): Promise<boolean>;
  /** Optional: make every later fence of `key` exceed `fence`; `quorum()` needs it to keep fences increasing. */
  advanceFence?(request: AdvanceFenceRequest): Promise<void>;
  /**
   * Optional: resolve when `key` may have been released (pub/sub, events); reject on abort. With
   * `request.handoff`, resolve with the grant when the backend handed the lock to that token's
   * attempt, even if that happened while the caller was attempting; never with a grant for
   * another attempt.
   */
  waitForRelease?(request: WaitRequest): Promise<HandedOff | undefined>;
  /** Optional: current holders, for inspection tools; null when nobody holds `key`. */
  inspect?(key: string): Promise<LockInfo | null>;
  /** Optional: free what the backend opened itself (never the user's client). */
  close?(): Promise<void>;
}
