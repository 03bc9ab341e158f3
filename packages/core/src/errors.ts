/** Machine-readable error codes, one per error class. */
export type DeadboltErrorCode =
  | 'LOCK_TIMEOUT'
  | 'LOCK_LOST'
  | 'LOCK_NOT_HELD'
  | 'QUORUM'
  | 'BACKEND'
  | 'INVALID_ARGUMENT'
  | 'NESTED_LOCK';

const PREFIX = '[deadbolt]';

/** Base class of every error deadbolt throws; check `code` rather than the message. */
export class DeadboltError extends Error {
  /** Stable, machine-readable code. */
  readonly code: DeadboltErrorCode;

  constructor(code: DeadboltErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${PREFIX} ${message}`, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * `acquire` waited `waitedMs` for `key` and did not get it.
 *
 * @example
 * ```ts
 * try { await locks.acquire('report', { wait: 500 }); }
 * catch (error) { if (error instanceof LockTimeoutError) console.log(error.key, error.waitedMs, error.unanswered); }
 * ```
 */
export class LockTimeoutError extends DeadboltError {
  /** The key that could not be acquired. */
  readonly key: string;
  /** How long the call waited, in milliseconds. */
  readonly waitedMs: number;
  /**
   * True when the wait ran out on a request the backend had not answered (a dead or stalled
   * connection the client has not given up on yet): the backend, not a holder, is the problem.
   * False when the lock stayed taken. That request is abandoned; if the backend applies it
   * later, the manager gives its grant back when the answer comes (else its TTL ends it).
   */
  readonly unanswered: boolean;

  /**
   * @param unanswered - see {@link LockTimeoutError.unanswered}
   */
  constructor(key: string, waitedMs: number, unanswered = false) {
    super(
      'LOCK_TIMEOUT',
      unanswered
        ? `could not acquire "${key}" within ${waitedMs} ms: the backend did not answer the last request in time; is the connection dead? (set the client's command timeout to fail sooner)`
        : `could not acquire "${key}" within ${waitedMs} ms; raise \`wait\` or shorten what the holder does under the lock`,
    );
    this.key = key;
    this.waitedMs = waitedMs;
    this.unanswered = unanswered;
  }
}

/**
 * The lease on `key` was lost (expired, taken over, or could not be confirmed in time).
 * `lock.signal` aborts with this error; `lock.extend()` throws it.
 */
export class LockLostError extends DeadboltError {
  /** The key whose lease was lost. */
  readonly key: string;

  constructor(key: string, reason: string, options?: { cause?: unknown }) {
    super('LOCK_LOST', `lost the lock on "${key}": ${reason}`, options);
    this.key = key;
  }
}

/** An operation needed a lock that this process does not hold (already released). */
export class LockNotHeldError extends DeadboltError {
  /** The key. */
  readonly key: string;

  constructor(key: string, reason: string) {
    super('LOCK_NOT_HELD', `the lock on "${key}" is not held: ${reason}`);
    this.key = key;
  }
}

/**
 * The backend (Redis, the network, a driver) failed; the original error is `cause`. A
 * {@link QuorumError} is one too: the backend that failed is a majority of a quorum's members.
 */
export class BackendError extends DeadboltError {
  constructor(message: string, cause: unknown);
  /** @internal For {@link QuorumError}: the code and the full message. */
  constructor(message: string, cause: unknown, code: 'QUORUM');
  constructor(message: string, cause: unknown, code: 'BACKEND' | 'QUORUM' = 'BACKEND') {
    super(code, code === 'BACKEND' ? `${message}: ${describe(cause)}` : message, { cause });
  }
}

/**
 * A quorum could not reach a majority; `causes` holds one entry per member backend. It is a
 * {@link BackendError}, so code that handles an unreachable backend handles it too.
 */
export class QuorumError extends BackendError {
  /** Per member: the error it raised, or null if it answered (but refused). */
  readonly causes: readonly (unknown | null)[];

  constructor(message: string, causes: readonly (unknown | null)[]) {
    const detail = causes
      .map((cause, index) => `#${index}: ${cause === null ? 'refused' : describe(cause)}`)
      .join('; ');
    super(`${message} (${detail})`, new AggregateError(causes.filter(Boolean)), 'QUORUM');
    this.causes = causes;
  }
}

/**
 * A call waited for a key its own async flow already holds through `withLock` (a `withLock` or
 * `acquire` inside a `withLock` of the same key), which would wait for itself until its `wait`
 * ran out. Pass `{ reentrant: true }` to a nested `withLock` to run under the outer hold.
 */
export class NestedLockError extends DeadboltError {
  /** The key held twice. */
  readonly key: string;

  constructor(key: string, call: 'acquire' | 'withLock') {
    super(
      'NESTED_LOCK',
      `${call}("${key}") inside a withLock of the same key would wait for itself; pass { reentrant: true } to withLock to run under the outer hold, or use another key`,
    );
    this.key = key;
  }
}

/** A call got an argument it cannot use; `argument` names it. Thrown before any I/O. */
export class InvalidArgumentError extends DeadboltError {
  /** The offending argument, for example `options.ttl`. */
  readonly argument: string;

  constructor(argument: string, problem: string) {
    super('INVALID_ARGUMENT', `invalid ${argument}: ${problem}`);
    this.argument = argument;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
