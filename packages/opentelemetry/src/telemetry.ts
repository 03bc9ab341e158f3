import type { AcquireTraceContext, LockEventName, LockEvents } from '@deadbolt/core';

/**
 * What the channels are turned into (spans, or metrics): one handler per event, so that a new
 * event in core fails to compile here until it is handled or knowingly ignored.
 */
export interface LockTelemetry {
  /** `tracing:deadbolt:acquire:start`: an acquisition call began, in its caller's context. */
  callStarted(call: AcquireTraceContext): void;
  /** `tracing:deadbolt:acquire:asyncEnd`: the call has its `result` or `error`. */
  callEnded(call: AcquireTraceContext): void;
  /**
   * `deadbolt:<name>`, with the acquisition call the event was published in, if any: `acquired`
   * is published inside the call that it ends (not for `locks.resume()`).
   */
  readonly events: {
    [Name in LockEventName]: (
      event: LockEvents[Name],
      call: AcquireTraceContext | undefined,
    ) => void;
  };
  /** Forgets what is in flight: the instrumentation was disabled. */
  stop(): void;
}

/** Every `deadbolt:<name>` channel; `satisfies` fails the build when core adds or drops one. */
export const EVENT_NAMES = Object.keys({
  acquired: true,
  released: true,
  extended: true,
  'extend-failed': true,
  lost: true,
  'timed-out': true,
  'release-failed': true,
} satisfies Record<LockEventName, true>) as LockEventName[];
