import { channel, tracingChannel } from 'node:diagnostics_channel';
import type { DeadboltError, LockLostError } from './errors.js';

/** What every event says about the lock it is about. Never its token. */
export interface LockEventBase {
  /** The lock's key. */
  key: string;
  /** The owner label of the manager that took it (see `LockManagerOptions.owner`). */
  owner: string;
  /**
   * Numbers the acquisitions of this process, so that a lock's events can be told apart from
   * another's on the same key (an `acquired` and its `released`, say). Not the token.
   */
  id: number;
  /** Permits it holds (or asked for): 1 for a mutex. */
  weight: number;
  /** Permits the key has in all. */
  limit: number;
}

/** A lock was granted. */
export interface AcquiredEvent extends LockEventBase {
  fence: number;
  /** Milliseconds from the call to the grant. */
  waitedMs: number;
  /** Whether a release handed it over (no request after the release), rather than a request. */
  handedOff: boolean;
  /** The lease length asked for. */
  ttlMs: number;
}

/** A lock was given back with `release()` (or the end of `withLock`/`await using`). */
export interface ReleasedEvent extends LockEventBase {
  fence: number;
  /** Milliseconds from the grant to the release. */
  heldMs: number;
  /** False when the lease was already gone (expired or taken over) when the release came. */
  released: boolean;
}

/** A lease was extended, by `lock.extend()` or by auto-extension. */
export interface ExtendedEvent extends LockEventBase {
  fence: number;
  /** The new lease length. */
  ttlMs: number;
  /** True for auto-extension (and a handed-over lease's extension to its TTL). */
  automatic: boolean;
}

/** An extension failed for a reason other than a lost lease (a `lost` event reports those). */
export interface ExtendFailedEvent extends LockEventBase {
  fence: number;
  /** A `BackendError` (the backend could not be reached), or what the backend threw. */
  error: DeadboltError;
  /** True for auto-extension, which retries until the lease's loss point. */
  automatic: boolean;
}

/** A lock was lost: its lease expired unconfirmed, or the backend no longer holds it. */
export interface LostEvent extends LockEventBase {
  fence: number;
  /** The reason `lock.signal` aborted with. */
  reason: LockLostError;
  /** Milliseconds from the grant to the loss. */
  heldMs: number;
}

/** `acquire` gave up after `wait`. */
export interface TimedOutEvent extends LockEventBase {
  waitedMs: number;
}

/**
 * A release failed: one the caller did not see fail (the end of `withLock`, which never hides
 * what its callback returned or threw; a lost lock's leftovers; a grant that came too late and
 * was given back; an acquisition abandoned after an error or abort), or one it did.
 */
export interface ReleaseFailedEvent extends LockEventBase {
  /** A `BackendError` (the backend could not be reached), or what the backend threw. */
  error: DeadboltError;
  /** What the release was for. */
  during: 'release' | 'withLock' | 'give-back';
}

/** Every event `LockManager` publishes, by name: the `deadbolt:<name>` channels and `locks.on`. */
export interface LockEvents {
  acquired: AcquiredEvent;
  released: ReleasedEvent;
  extended: ExtendedEvent;
  'extend-failed': ExtendFailedEvent;
  lost: LostEvent;
  'timed-out': TimedOutEvent;
  'release-failed': ReleaseFailedEvent;
}

/** The name of a {@link LockEvents} event. */
export type LockEventName = keyof LockEvents;

/** What `tracing:deadbolt:acquire:*` carries: the call, then its outcome. */
export interface AcquireTraceContext {
  key: string;
  owner: string;
  weight: number;
  limit: number;
  /** Whether the call waits (`acquire`, `withLock`) or makes one attempt (`tryAcquire`). */
  waits: boolean;
  /** Set when the call ended: the lock's `id` (as in its events) and fence; null if refused. */
  result?: { id: number; fence: number } | null;
  /** Set when the call failed. */
  error?: unknown;
}

/** Every event's name. */
export const EVENT_NAMES: readonly LockEventName[] = [
  'acquired',
  'released',
  'extended',
  'extend-failed',
  'lost',
  'timed-out',
  'release-failed',
];

/** The `deadbolt:<event>` channels, created once. */
const channels = Object.fromEntries(
  EVENT_NAMES.map((name) => [name, channel(`deadbolt:${name}`)]),
) as Record<LockEventName, ReturnType<typeof channel>>;

/** `tracing:deadbolt:acquire:start|end|asyncStart|asyncEnd|error`, around each acquisition call. */
export const acquireTrace = tracingChannel<unknown, AcquireTraceContext>('deadbolt:acquire');

/** A listener of one event. */
export type LockEventListener<Name extends LockEventName> = (event: LockEvents[Name]) => void;

/**
 * One manager's events: published to the `deadbolt:<name>` diagnostics channels (for every
 * subscriber in the process) and to the listeners added with {@link LockEventHub.on} (this
 * manager's only). Nothing is built unless someone listens.
 */
export class LockEventHub {
  readonly #listeners = new Map<LockEventName, Set<(event: never) => void>>();

  /** Adds `listener` for `name`; the function returned removes it. */
  on<Name extends LockEventName>(name: Name, listener: LockEventListener<Name>): () => void {
    let listeners = this.#listeners.get(name);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(name, listeners);
    }
    const added = listener as (event: never) => void;
    listeners.add(added);
    return () => listeners.delete(added);
  }

  /** Whether anyone listens to `name`: events cost nothing to those who do not. */
  wants(name: LockEventName): boolean {
    return channels[name].hasSubscribers || (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  /**
   * Publishes the event `make` builds, if anyone listens. A listener that throws does not break
   * the lock: its error is reported on the next tick, as an uncaught exception, like an
   * `EventEmitter` listener's would be.
   */
  emit<Name extends LockEventName>(name: Name, make: () => LockEvents[Name]): void {
    if (!this.wants(name)) return;
    const event = make();
    const published = channels[name];
    if (published.hasSubscribers) published.publish(event);
    for (const listener of this.#listeners.get(name) ?? []) {
      try {
        (listener as LockEventListener<Name>)(event);
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
  }
}

let lastId = 0;

/** The `id` of the next acquisition (see {@link LockEventBase.id}). */
export function nextAcquisitionId(): number {
  lastId += 1;
  return lastId;
}
