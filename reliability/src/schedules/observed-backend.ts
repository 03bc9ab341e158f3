/**
 * A pass-through LockBackend between a client's LockManager and its real backend, used only
 * through the public contract. It notes, per token, when attempts were sent, how the grant came
 * (the acquire reply, or a handoff through `handoff.waitForGrant`) and when a release was asked for,
 * and it lets a check run around a queued attempt: before it is sent, and on its reply before
 * the manager sees it, while the waiter is known to be still inside its wait.
 */
import type {
  AcquireRequest,
  AcquireResult,
  HandedOff,
  LockBackend,
  QueuedAcquireRequest,
} from '@deadbolt/core';
import { nowMs } from '../clock.js';

/** How a token's grant reached its client. */
export type GrantOrigin =
  | { kind: 'reply' }
  | {
      kind: 'handoff';
      /** Milliseconds from sending the token's last attempt to the grant's arrival. */
      afterLastAttemptMs: number;
      /** Attempts the token had made when the grant arrived. */
      attempts: number;
      afterMs: number;
      /**
       * How long before the token's last attempt was sent the handoff happened (negative: after),
       * going by the fence, which the deadbolt backends floor at the server's clock in
       * microseconds. A diagnostic only: positive means the grant is older than the last attempt.
       */
      grantedBeforeLastAttemptMs: number;
    };

/** A queued attempt (one that asks for a queue place), as a check around it sees it. */
export interface QueuedAttempt {
  request: QueuedAcquireRequest;
  /** When the same token's attempt before it was sent (monotonic ms); undefined for its first. */
  previousSentAt: number | undefined;
  /** Whether a release of the token was asked for since `since` (monotonic ms). */
  releasedSince(since: number): boolean;
}

/**
 * Runs before a queued attempt is sent; what it returns, if anything, runs on the reply (with
 * when the attempt was sent) before the manager sees it.
 */
export type QueuedAttemptCheck = (
  attempt: QueuedAttempt,
) => Promise<((result: AcquireResult, sentAt: number) => Promise<void>) | undefined>;

interface TokenNotes {
  attempts: number;
  lastSentAt: number;
  /** `Date.now()` when the last attempt was sent. */
  lastSentEpoch: number;
  releasedAt: number | undefined;
  origin: GrantOrigin | undefined;
}

/** Notes of tokens whose last news is older than this are dropped once there are many. */
const FORGET_AFTER_MS = 30_000;

export class ObservedBackend {
  readonly backend: LockBackend;
  readonly #notes = new Map<string, TokenNotes>();

  /**
   * @param inner - the backend that holds the leases
   * @param checkQueued - runs around each attempt that asks for a queue place
   */
  constructor(inner: LockBackend, checkQueued?: QueuedAttemptCheck) {
    const attempt = async <Request extends AcquireRequest>(
      request: Request,
      send: (request: Request) => Promise<AcquireResult>,
      check?: (
        notes: TokenNotes,
        previousSentAt: number | undefined,
      ) => ReturnType<QueuedAttemptCheck>,
    ) => {
      const notes = this.#notesOf(request.token);
      const previousSentAt = notes.attempts > 0 ? notes.lastSentAt : undefined;
      const onReply = await check?.(notes, previousSentAt);
      const sentAt = nowMs();
      notes.attempts += 1;
      notes.lastSentAt = sentAt;
      notes.lastSentEpoch = Date.now();
      const result = await send(request);
      if (result.ok) notes.origin = { kind: 'reply' };
      await onReply?.(result, sentAt);
      return result;
    };
    const backend: {
      -readonly [Member in keyof LockBackend]: LockBackend[Member];
    } = {
      acquire: (request) => attempt(request, (sent) => inner.acquire(sent)),
      extend: (request) => inner.extend(request),
      release: (request) => {
        this.#notesOf(request.token).releasedAt = nowMs();
        return inner.release(request);
      },
    };
    const queue = inner.queue;
    if (queue) {
      backend.queue = {
        acquire: (request) =>
          attempt(
            request,
            (sent) => queue.acquire(sent),
            checkQueued &&
              ((notes, previousSentAt) =>
                checkQueued({
                  request,
                  previousSentAt,
                  releasedSince: (since) =>
                    notes.releasedAt !== undefined && notes.releasedAt >= since,
                })),
          ),
      };
    }
    const handoff = inner.handoff;
    // Only when the inner backend has it: the manager waits for grants only on backends that hand off.
    if (handoff) {
      backend.handoff = {
        waitForGrant: async (request) => {
          const handedOff = await handoff.waitForGrant(request);
          if (isGrant(handedOff)) {
            const notes = this.#notesOf(request.token);
            notes.origin = {
              kind: 'handoff',
              afterLastAttemptMs: nowMs() - notes.lastSentAt,
              attempts: notes.attempts,
              afterMs: handedOff.afterMs,
              grantedBeforeLastAttemptMs: notes.lastSentEpoch - handedOff.fence / 1000,
            };
          }
          return handedOff;
        },
      };
    }
    for (const passed of ['wakeUps', 'fences', 'inspection', 'listing'] as const) {
      if (inner[passed]) Object.assign(backend, { [passed]: inner[passed] });
    }
    if (inner.close) backend.close = () => (inner.close as () => Promise<void>)();
    this.backend = backend;
  }

  /** How the grant of `token` came, once it came. */
  originOf(token: string): GrantOrigin | undefined {
    return this.#notes.get(token)?.origin;
  }

  #notesOf(token: string): TokenNotes {
    let notes = this.#notes.get(token);
    if (notes === undefined) {
      if (this.#notes.size > 1_000) this.#forgetOld();
      notes = {
        attempts: 0,
        lastSentAt: nowMs(),
        lastSentEpoch: Date.now(),
        releasedAt: undefined,
        origin: undefined,
      };
      this.#notes.set(token, notes);
    }
    return notes;
  }

  #forgetOld(): void {
    const before = nowMs() - FORGET_AFTER_MS;
    for (const [token, notes] of this.#notes) {
      if (Math.max(notes.lastSentAt, notes.releasedAt ?? 0) < before) this.#notes.delete(token);
    }
  }
}

function isGrant(value: unknown): value is HandedOff {
  return typeof value === 'object' && value !== null && (value as HandedOff).ok === true;
}

/** Describes an origin for a violation's text. */
export function describeOrigin(origin: GrantOrigin | undefined): string {
  if (origin === undefined) return 'granted by a path the checker did not see';
  if (origin.kind === 'reply') return 'granted by its acquire reply';
  const before = origin.grantedBeforeLastAttemptMs;
  const dated =
    before > 0
      ? `its fence dates the handoff ${before.toFixed(0)} ms before that attempt`
      : `its fence dates the handoff ${(-before).toFixed(0)} ms after that attempt`;
  return (
    `handed off on release (afterMs ${origin.afterMs}), the grant arriving ` +
    `${origin.afterLastAttemptMs.toFixed(0)} ms after its attempt #${origin.attempts} was sent; ${dated}`
  );
}
