import { whenAborted } from './abort-fanout.js';
import type {
  AcquireGranted,
  AcquireRequest,
  AcquireResult,
  HandedOff,
  LockBackend,
  QueuedAcquireRequest,
} from './backend.js';
import { LockTimeoutError } from './errors.js';
import type { LockEventBase, LockEventHub } from './events.js';
import { grantedLease, handedLease, type Lease } from './lease.js';
import type { Ticket } from './local-queue.js';
import { type Lock, wrapBackendError } from './lock.js';

/**
 * How long a waiter's queue place lasts without a renewing attempt; waiters attempt at least
 * every quarter of it. This bounds how long a waiter that died can hold up the ones behind it.
 */
export const QUEUE_PLACE_TTL_MS = 2_000;

/**
 * The longest lease a waiter asks to be handed on release (a claim): the waiter extends it to its
 * TTL once it holds the lock, if it still does a third of the way in. A waiter that died while
 * queued, after its last renewal, so holds up the ones behind it for this long at most.
 */
export const HANDOFF_LEASE_MS = 2_000;

/** One call, its options resolved and checked. @internal */
export interface ResolvedCall {
  /** Numbers this acquisition in its events. */
  id: number;
  /** `Date.now()` when the call was made. */
  calledAt: number;
  /** The token the caller chose, if any (see `AcquireOptions.token`). */
  token?: string;
  key: string;
  limit: number;
  weight: number;
  ttlMs: number;
  waitMs: number;
  signal: AbortSignal | undefined;
  /** Auto-extension, when asked for: every `everyMs`, or a third of the way into each lease. */
  autoExtend: AutoExtension | undefined;
  owner: string;
  /** Whether waiting takes a place in the backend's queue (a backend with `queue` only). */
  queued: boolean;
  /** Whether the place asks to be handed the lock on release (a backend with `handoff` only). */
  handoff: boolean;
}

/** How a lock renews its lease in the background (see `AcquireOptions.autoExtend`). @internal */
export interface AutoExtension {
  everyMs?: number;
}

/** What an acquisition needs of its manager. @internal */
export interface AcquisitionContext {
  readonly backend: LockBackend;
  readonly events: LockEventHub;
  readonly giveBacks: GiveBacks;
  /** The backoff before the `round`-th retry, in ms. */
  backoffDelay(round: number): number;
  /**
   * The lock for a lease (handed over on release, or granted to a request), or null when it came
   * too late to be of use (it is then given back).
   */
  grant(
    call: ResolvedCall,
    token: string,
    granted: AcquireGranted,
    lease: Lease,
    handedOff: boolean,
  ): Lock | null;
}

/**
 * Where a waiting acquisition is: behind callers of the same manager for the same key, asking the
 * backend, waiting for news (a release, a handoff, its backoff timer), or done.
 */
export type AcquisitionState = 'in line' | 'asking' | 'waiting' | 'granted' | 'given up';

/**
 * One `acquire` that waits: its place in the manager's line for the key, then rounds of asking
 * the backend and waiting for news until a grant, the deadline or an abort. Only the head of the
 * manager's line asks, so one process sends one request per key at a time.
 */
export class Acquisition {
  state: AcquisitionState = 'in line';
  readonly #context: AcquisitionContext;
  readonly #call: ResolvedCall;
  readonly #token: string;
  readonly #ticket: Ticket;
  readonly #startedAt: number;
  /** The last request that reached the backend, counting from 1: a handoff answers one. */
  #attempt = 0;
  /** When that request was sent: a lease handed to it began after. */
  #attemptSentAt: number;
  /** Disarms the wake-ups of the last wait, once the next request is on its way. */
  #stopWaiting: (() => void) | undefined;
  /** Rejects when the call's requests may take no longer to answer (see `#answerWithin`). */
  #unanswered: Promise<never> | undefined;
  #rejectUnanswered: ((reason: Error) => void) | undefined;
  /** When `#unanswered` rejects (`Date.now()` time); 0 before the first request. */
  #answerBy = 0;
  #answerTimer: NodeJS.Timeout | undefined;

  constructor(context: AcquisitionContext, call: ResolvedCall, token: string, ticket: Ticket) {
    this.#context = context;
    this.#call = call;
    this.#token = token;
    this.#ticket = ticket;
    this.#startedAt = call.calledAt;
    this.#attemptSentAt = call.calledAt;
  }

  /** Runs the acquisition to a grant; rejects with `LockTimeoutError` or the signal's reason. */
  async run(): Promise<Lock> {
    const { signal, waitMs } = this.#call;
    const deadline = this.#startedAt + waitMs;
    try {
      signal?.throwIfAborted();
      // First in line (the usual case) needs no timer, race or controller to wait for its turn.
      if (!this.#ticket.atHead && !(await waitUntil(this.#ticket.turn, deadline, signal))) {
        throw this.#timedOut();
      }
      let skipAttempt = this.#behindLocalGrant();
      for (let round = 0; ; round++) {
        const askedAt = Date.now();
        let result: AcquireResult = NOT_ASKED;
        if (skipAttempt) {
          skipAttempt = false;
        } else {
          result = await this.#answerWithin(
            this.#ask(askedAt),
            Math.max(deadline, askedAt + MIN_ANSWER_MS),
          );
        }
        const granted = result.ok
          ? this.#grant(result, grantedLease(result, askedAt), false)
          : null;
        if (granted) return granted;
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw this.#timedOut();
        const delay = Math.min(
          this.#context.backoffDelay(round),
          // A grant that came back too late was given back at once: try again right away.
          (result.ok ? 0 : result.retryInMs) ?? remaining,
          remaining,
          // Attempts renew the queue place: attempt often enough that it never runs out.
          this.#call.queued ? QUEUE_PLACE_TTL_MS / 4 : Number.POSITIVE_INFINITY,
        );
        const handedOff = await this.#waitForNews(Math.max(1, delay), askedAt);
        // Every attempt before the last was refused after the next one renewed its place: a grant
        // for one of those is stale (its lease had ended by then), and only a grant for the last
        // can still hold. Backends drop stale grants; this check keeps a backend that does not
        // from handing out a phantom lock.
        if (handedOff?.attempt === this.#attempt) {
          const handed = this.#grant(handedOff, handedLease(handedOff, this.#attemptSentAt), true);
          if (handed) return handed;
        }
        this.state = 'asking';
      }
    } catch (error) {
      this.state = 'given up';
      throw error;
    } finally {
      this.#stopWaiting?.();
      clearTimeout(this.#answerTimer);
      if (this.state === 'granted') {
        this.#ticket.leaveGranted(this.#call.weight);
      } else {
        this.#ticket.leave();
        // Give up the queue place at once so those behind need not wait for it to run out.
        if (this.#call.queued && this.#attempt > 0)
          giveBack(this.#context, this.#call, this.#token);
      }
    }
  }

  /**
   * The answer to a request, or a {@link LockTimeoutError} saying the backend did not answer once
   * `by` passes: `wait` bounds the whole call, also when a request hangs on a dead connection that
   * the client has not given up on yet. A grant that comes after is given back. One timer serves
   * every request of the call; it is moved only for a request that needs a later `by` (one sent
   * in the last second before the deadline, which still gets its second: the last attempt, made
   * at the deadline, must be able to say "taken" rather than "did not answer").
   */
  #answerWithin(pending: Promise<AcquireResult>, by: number): Promise<AcquireResult> {
    if (by > this.#answerBy) {
      this.#answerBy = by;
      clearTimeout(this.#answerTimer);
      // A timer that already fired rejected its promise for good: later requests need a new one.
      if (this.#unanswered === undefined || this.#rejectUnanswered === undefined) {
        this.#unanswered = new Promise<never>((_, reject) => {
          this.#rejectUnanswered = reject;
        });
        // Handled here: it may reject while no request is out, which means nothing.
        this.#unanswered.catch(() => undefined);
      }
      this.#answerTimer = setTimeout(() => {
        const reject = this.#rejectUnanswered;
        this.#rejectUnanswered = undefined;
        reject?.(UNANSWERED);
      }, by - Date.now());
      this.#answerTimer.unref();
    }
    const unanswered = this.#unanswered as Promise<never>;
    return Promise.race([pending, unanswered]).catch((error: unknown) => {
      if (error !== UNANSWERED) throw error;
      pending.then(
        (late) => late.ok && giveBack(this.#context, this.#call, this.#token),
        () => undefined,
      );
      throw this.#timedOut(true);
    });
  }

  /**
   * Next in line right behind a grant of this manager that leaves no room for this request: that
   * holder's release (or loss) wakes this one, and asking before it would only be refused.
   * Queued (fair) waiters still ask at once, to take their place in the backend's queue.
   */
  #behindLocalGrant(): boolean {
    const held = this.#ticket.behindLocalGrant;
    return !this.#call.queued && held !== undefined && held + this.#call.weight > this.#call.limit;
  }

  /** Sends the next attempt; the last wait's timers and listeners go once it is on its way. */
  #ask(askedAt: number): Promise<AcquireResult> {
    this.state = 'asking';
    this.#ticket.forgetWakeups();
    this.#attempt += 1;
    this.#attemptSentAt = askedAt;
    const pending = ask(this.#context, this.#call, this.#token, this.#attempt);
    // After a wake-up, the request leaves first. From here on, a local release is kept for the next wait.
    this.#stopWaiting?.();
    this.#stopWaiting = undefined;
    return pending;
  }

  #grant(granted: AcquireGranted, lease: Lease, handedOff: boolean): Lock | null {
    const lock = this.#context.grant(this.#call, this.#token, granted, lease, handedOff);
    if (lock !== null) this.state = 'granted';
    return lock;
  }

  /**
   * Waits for whichever comes first of a release the backend reports (with the grant, when it
   * handed the lock to this attempt), a local release and `delayMs`; rejects on abort.
   */
  #waitForNews(delayMs: number, lastAttemptAt: number): Promise<HandedOff | null> {
    this.state = 'waiting';
    const { key, signal, handoff } = this.#call;
    const { backend } = this.#context;
    let timer: NodeJS.Timeout | undefined;
    const news: Promise<HandedOff | null>[] = [
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), delayMs);
      }),
    ];
    // A waiter that asked for a handoff hears of a local release from the backend, with the
    // grant: asking on its own as well would only make the backend grant it a second time.
    if (!handoff) news.push(this.#ticket.nextLocalRelease().then(() => null));
    let backendWait: AbortController | undefined;
    const waitOnBackend = handoff
      ? (waitSignal: AbortSignal) =>
          backend.handoff?.waitForGrant({
            key,
            signal: waitSignal,
            since: lastAttemptAt,
            token: this.#token,
            attempt: this.#attempt,
          })
      : backend.wakeUps &&
        ((waitSignal: AbortSignal) =>
          backend.wakeUps?.waitForRelease({ key, signal: waitSignal, since: lastAttemptAt }));
    if (waitOnBackend) {
      const controller = new AbortController();
      backendWait = controller;
      news.push(
        Promise.resolve(waitOnBackend(controller.signal)).then(
          (value) => {
            backendWait = undefined;
            return handoff ? asHandedOff(value) : null;
          },
          (error: unknown) => {
            backendWait = undefined;
            // Our own abort (other news came first) is not a failure.
            if (controller.signal.aborted) return null;
            throw wrapBackendError(error, `waiting for "${key}" failed`);
          },
        ),
      );
    }
    let stopAbortListener: (() => void) | undefined;
    if (signal) {
      news.push(
        new Promise((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          else stopAbortListener = whenAborted(signal, () => reject(signal.reason));
        }),
      );
    }
    // Everything is undone directly: an abort would dispatch an event, which costs tens of
    // microseconds on the path of every wake-up. Only a backend wait still pending is aborted.
    this.#stopWaiting = () => {
      // A local release that comes after this must wake the next wait, not this finished one.
      this.#ticket.stopListening();
      clearTimeout(timer);
      stopAbortListener?.();
      backendWait?.abort(STOPPED);
    };
    return Promise.race(news);
  }

  #timedOut(unanswered = false): LockTimeoutError {
    const waitedMs = Date.now() - this.#startedAt;
    this.#context.events.emit('timed-out', () => ({ ...eventBase(this.#call), waitedMs }));
    return new LockTimeoutError(this.#call.key, waitedMs, unanswered);
  }
}

/** What the call's answer timer rejects with: the request out then is abandoned. */
const UNANSWERED = new Error('unanswered');

/**
 * The least time a request gets to answer, whatever `wait` says: `wait: 0` means "do not wait for
 * others", not "give the backend no time"; a request still needs a round trip.
 */
const MIN_ANSWER_MS = 1_000;

/** The outcome of an attempt the manager skipped (see `behindLocalGrant`): wait, with no hint. */
const NOT_ASKED: AcquireResult = { ok: false };

/**
 * The reason of the manager's own internal aborts (a race was won, a wait is over). Allocated once:
 * `abort()` without a reason builds a DOMException, stack trace included, on every call.
 */
const STOPPED = new Error('stopped');

/**
 * One acquire request, the `attempt`-th of its acquisition (queued when the call is); a plain
 * function so that, without a signal, no async frame wraps it. A failed request gives back what
 * the token may hold (the request may have been applied before its reply was lost).
 */
export function ask(
  context: GiveBackContext,
  call: ResolvedCall,
  token: string,
  attempt = 1,
): Promise<AcquireResult> {
  const { backend } = context;
  const { key, limit, weight, ttlMs, owner, signal } = call;
  const givingBack = context.giveBacks.underway(key, token);
  if (givingBack) return givingBack.then(() => ask(context, call, token, attempt));
  const onFailure = (error: unknown): never => {
    giveBack(context, call, token);
    throw wrapBackendError(error, `acquire of "${key}" failed`);
  };
  let sent: Promise<AcquireResult>;
  try {
    if (call.queued && backend.queue) {
      // Built whole rather than spread from the plain request: a spread costs microseconds.
      const queued: QueuedAcquireRequest = {
        key,
        token,
        ttlMs,
        limit,
        weight,
        owner,
        placeTtlMs: QUEUE_PLACE_TTL_MS,
      };
      if (call.handoff) queued.handoff = { attempt, ttlMs: Math.min(ttlMs, HANDOFF_LEASE_MS) };
      sent = backend.queue.acquire(queued).catch(onFailure);
    } else {
      const request: AcquireRequest = { key, token, ttlMs, limit, weight, owner };
      sent = backend.acquire(request).catch(onFailure);
    }
  } catch (error) {
    // A backend that throws instead of rejecting.
    sent = Promise.reject(error).catch(onFailure);
  }
  if (signal === undefined) return sent;
  return raceAbort(context, call, sent, signal, token);
}

/** An abort must not wait for a request stuck on a slow connection. */
async function raceAbort(
  context: GiveBackContext,
  call: ResolvedCall,
  sent: Promise<AcquireResult>,
  signal: AbortSignal,
  token: string,
): Promise<AcquireResult> {
  const stop = new AbortController();
  try {
    return await Promise.race([sent, rejectOnAbort(signal, stop.signal)]);
  } catch (error) {
    if (signal.aborted) {
      // The request may still be granted after the abort: give that grant back.
      sent.then(
        (late) => late.ok && giveBack(context, call, token),
        () => undefined,
      );
    }
    throw error;
  } finally {
    stop.abort(STOPPED);
  }
}

/** What giving back needs: the backend, where failures are published, and what is under way. */
export type GiveBackContext = Pick<AcquisitionContext, 'backend' | 'events' | 'giveBacks'>;

/**
 * Gives back, without waiting, what `token` may hold or queue for on `call`'s key, for a caller
 * who will not use it; a failure is published as `release-failed`, since nobody else hears of it.
 */
export function giveBack(context: GiveBackContext, call: ResolvedCall, token: string): void {
  context.giveBacks.start(call.key, token, () =>
    context.backend.release({ key: call.key, token }).then(
      () => undefined,
      (error: unknown) => {
        context.events.emit('release-failed', () => ({
          ...eventBase(call),
          error: wrapBackendError(error, `release of "${call.key}" failed`),
          during: 'give-back',
        }));
      },
    ),
  );
}

/**
 * The releases of a manager that nobody awaits (grants given back, what is left of a lost lease),
 * by key and token. A request of the same token waits for them to finish: sent behind one, it could
 * still reach the store first (a client that sends a script again after `NOSCRIPT`, a quorum
 * member that answers late), and the release would then end the lease just granted to it.
 */
export class GiveBacks {
  readonly #underway = new Map<string, Promise<void>>();

  /** Starts `release` of `token` on `key`; it must not reject. */
  start(key: string, token: string, release: () => Promise<void>): void {
    const id = giveBackId(key, token);
    const before = this.#underway.get(id);
    const done = before ? Promise.all([before, release()]).then(() => undefined) : release();
    this.#underway.set(id, done);
    done.then(() => {
      if (this.#underway.get(id) === done) this.#underway.delete(id);
    });
  }

  /** Settles when the give-backs of `token` on `key` are done; undefined when none is under way. */
  underway(key: string, token: string): Promise<void> | undefined {
    // The usual case, nothing given back, costs no string.
    return this.#underway.size === 0 ? undefined : this.#underway.get(giveBackId(key, token));
  }
}

/** One string per (key, token) pair: the key's length keeps `a` + `bc` apart from `ab` + `c`. */
function giveBackId(key: string, token: string): string {
  return `${key.length}:${key}${token}`;
}

/** What every event of `call` says about it. */
export function eventBase(call: ResolvedCall): LockEventBase {
  const { key, owner, id, weight, limit } = call;
  return { key, owner, id, weight, limit };
}

/** What a backend's wait resolved with, when it is a grant (a backend may resolve with anything). */
function asHandedOff(value: unknown): HandedOff | null {
  if (typeof value !== 'object' || value === null) return null;
  const { ok, fence, ttlMs, afterMs, attempt } = value as Partial<HandedOff>;
  const valid =
    ok === true &&
    Number.isSafeInteger(fence) &&
    Number.isSafeInteger(attempt) &&
    typeof ttlMs === 'number' &&
    ttlMs > 0 &&
    typeof afterMs === 'number' &&
    afterMs >= 0;
  return valid ? (value as HandedOff) : null;
}

/** Resolves true when `promise` settles before `deadline`, false at the deadline; rejects on abort. */
async function waitUntil(
  promise: Promise<void>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const stop = new AbortController();
  try {
    return await Promise.race([
      promise.then(() => true),
      sleep(Math.max(0, deadline - Date.now()), stop.signal).then(() => false),
      ...(signal ? [rejectOnAbort(signal, stop.signal)] : []),
    ]);
  } finally {
    stop.abort(STOPPED);
  }
}

function sleep(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    stop.addEventListener('abort', () => clearTimeout(timer), { once: true });
  });
}

/** Rejects with `signal.reason` when `signal` aborts; forgets the listener when `stop` aborts. */
function rejectOnAbort(signal: AbortSignal, stop: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const unsubscribe = whenAborted(signal, () => reject(signal.reason));
    stop.addEventListener('abort', unsubscribe, { once: true });
  });
}
