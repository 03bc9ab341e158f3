import type { AcquireTraceContext } from '@deadbolt/core';

/** The name of the tracer and the meter, as OpenTelemetry's instrumentation scope. */
export const SCOPE_NAME = '@deadbolt/opentelemetry';

export const ATTR_KEY = 'deadbolt.lock.key';
export const ATTR_OWNER = 'deadbolt.lock.owner';
export const ATTR_WEIGHT = 'deadbolt.lock.weight';
export const ATTR_LIMIT = 'deadbolt.lock.limit';
export const ATTR_FENCE = 'deadbolt.lock.fence';
export const ATTR_HANDED_OFF = 'deadbolt.lock.handed_off';
export const ATTR_TTL_MS = 'deadbolt.lock.ttl_ms';
export const ATTR_WAITS = 'deadbolt.acquire.waits';
export const ATTR_ACQUIRE_OUTCOME = 'deadbolt.acquire.outcome';
export const ATTR_HOLD_OUTCOME = 'deadbolt.hold.outcome';
export const ATTR_AUTOMATIC = 'deadbolt.extend.automatic';
export const ATTR_DURING = 'deadbolt.release.during';
/** OpenTelemetry's semantic-convention attribute for what went wrong. */
export const ATTR_ERROR_TYPE = 'error.type';

/**
 * How an acquisition call ended: granted, refused (`tryAcquire` found it taken), out of time,
 * cancelled by its signal, or failed (the backend, say).
 */
export type AcquireOutcome = 'acquired' | 'refused' | 'timed_out' | 'aborted' | 'error';

/**
 * How a hold ended: released, released after its lease was already gone (expired or taken over
 * without the holder noticing), lost while held, or a release that failed (the lease then ends
 * by its TTL).
 */
export type HoldOutcome = 'released' | 'not_held' | 'lost' | 'release_failed';

/** The outcome of a finished `tracing:deadbolt:acquire` call. */
export function acquireOutcome(call: AcquireTraceContext): AcquireOutcome {
  if (!('error' in call)) return call.result ? 'acquired' : 'refused';
  const { error } = call;
  if (hasCode(error) && error.code === 'LOCK_TIMEOUT') return 'timed_out';
  // An AbortSignal's own reasons; a signal aborted with a reason of the caller's counts as an error.
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    return 'aborted';
  }
  return 'error';
}

/**
 * The semantic conventions' `error.type`: the error's class name (`LockTimeoutError`,
 * `BackendError`, `AbortError`), a low-cardinality value unlike its message.
 */
export function errorType(error: unknown): string {
  return error instanceof Error ? error.name : '_OTHER';
}

function hasCode(error: unknown): error is { code: unknown } {
  return typeof error === 'object' && error !== null && 'code' in error;
}
