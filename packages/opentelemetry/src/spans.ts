import type { AcquireTraceContext, DeadboltError, LockEventBase } from '@deadbolt/core';
import {
  type Attributes,
  type Context,
  context,
  type Link,
  type Span,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import {
  ATTR_ACQUIRE_OUTCOME,
  ATTR_AUTOMATIC,
  ATTR_DURING,
  ATTR_ERROR_TYPE,
  ATTR_FENCE,
  ATTR_HANDED_OFF,
  ATTR_HOLD_OUTCOME,
  ATTR_KEY,
  ATTR_LIMIT,
  ATTR_OWNER,
  ATTR_TTL_MS,
  ATTR_WAITS,
  ATTR_WEIGHT,
  acquireOutcome,
  errorType,
  type HoldOutcome,
} from './attributes.js';
import type { LockTelemetry } from './telemetry.js';

/** An acquisition call in flight: its span and the context it was called in. */
interface Waiting {
  span: Span;
  parent: Context;
  /** Whether its `acquired` event came: a call grants one lock at most. */
  granted: boolean;
}

/**
 * `deadbolt.acquire` spans for acquisition calls and `deadbolt.hold` spans for the locks they
 * grant. The names are fixed and the key is an attribute: a span name should not carry an
 * unbounded value, or every key becomes an operation of its own in a tracing backend.
 */
export class LockSpans implements LockTelemetry {
  readonly #tracer: Tracer;
  readonly #waiting = new WeakMap<AcquireTraceContext, Waiting>();
  /** Open hold spans by the acquisition `id` of their events. */
  readonly #holding = new Map<number, Span>();

  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  callStarted(call: AcquireTraceContext): void {
    // `start` is published synchronously inside the caller's call, so this is its context.
    const parent = context.active();
    const span = this.#tracer.startSpan(
      'deadbolt.acquire',
      { attributes: { ...lockAttributes(call), [ATTR_WAITS]: call.waits } },
      parent,
    );
    this.#waiting.set(call, { span, parent, granted: false });
  }

  callEnded(call: AcquireTraceContext): void {
    const waiting = this.#waiting.get(call);
    if (waiting === undefined) return;
    this.#waiting.delete(call);
    const { span } = waiting;
    span.setAttribute(ATTR_ACQUIRE_OUTCOME, acquireOutcome(call));
    if (call.result) span.setAttribute(ATTR_FENCE, call.result.fence);
    if ('error' in call) failed(span, call.error);
    span.end();
  }

  readonly events: LockTelemetry['events'] = {
    acquired: (event, call) => {
      const waiting = call === undefined ? undefined : this.#waiting.get(call);
      const fromCall = waiting !== undefined && !waiting.granted && call?.key === event.key;
      let parent = context.active();
      const links: Link[] = [];
      if (fromCall) {
        waiting.granted = true;
        waiting.span.setAttribute(ATTR_HANDED_OFF, event.handedOff);
        // A sibling of the wait under the caller's span; the link ties the two together also
        // when the caller had no span and each is the root of a trace of its own.
        parent = waiting.parent;
        links.push({ context: waiting.span.spanContext() });
      }
      const span = this.#tracer.startSpan(
        'deadbolt.hold',
        {
          attributes: {
            ...lockAttributes(event),
            [ATTR_FENCE]: event.fence,
            [ATTR_HANDED_OFF]: event.handedOff,
            [ATTR_TTL_MS]: event.ttlMs,
          },
          links,
        },
        parent,
      );
      this.#holding.set(event.id, span);
    },
    released: (event) => {
      if (event.released) {
        this.#endHold(event.id, 'released');
        return;
      }
      this.#endHold(event.id, 'not_held', (span) =>
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: 'the lease was already gone (expired or taken over) when it was released',
        }),
      );
    },
    lost: (event) => {
      this.#endHold(event.id, 'lost', (span) => failed(span, event.reason));
    },
    extended: (event) => {
      this.#holding.get(event.id)?.addEvent('deadbolt.lock.extended', {
        [ATTR_TTL_MS]: event.ttlMs,
        [ATTR_AUTOMATIC]: event.automatic,
      });
    },
    'extend-failed': (event) => {
      this.#holding.get(event.id)?.addEvent('deadbolt.lock.extend_failed', {
        ...errorAttributes(event.error),
        [ATTR_AUTOMATIC]: event.automatic,
      });
    },
    'release-failed': (event) => {
      this.#holding.get(event.id)?.addEvent('deadbolt.lock.release_failed', {
        ...errorAttributes(event.error),
        [ATTR_DURING]: event.during,
      });
      // The holder let go but the backend may keep the lease until its TTL runs out.
      if (event.during === 'release') {
        this.#endHold(event.id, 'release_failed', (span) => failed(span, event.error));
      }
    },
    'timed-out': () => {
      // The acquire span of the call ends with the LockTimeoutError it rejects with.
    },
  };

  stop(): void {
    // Spans never ended are never exported: nothing is reported after `disable()`.
    this.#holding.clear();
  }

  /** Ends the hold span of `id`, if open, after `fail` has set its error. */
  #endHold(id: number, outcome: HoldOutcome, fail?: (span: Span) => void): void {
    const span = this.#holding.get(id);
    if (span === undefined) return;
    this.#holding.delete(id);
    span.setAttribute(ATTR_HOLD_OUTCOME, outcome);
    fail?.(span);
    span.end();
  }
}

/** What every span says about its lock. */
function lockAttributes(about: Omit<LockEventBase, 'id'>): Attributes {
  return {
    [ATTR_KEY]: about.key,
    [ATTR_OWNER]: about.owner,
    [ATTR_WEIGHT]: about.weight,
    [ATTR_LIMIT]: about.limit,
  };
}

function errorAttributes(error: DeadboltError): Attributes {
  return { [ATTR_ERROR_TYPE]: errorType(error), 'exception.message': error.message };
}

function failed(span: Span, error: unknown): void {
  span.setAttribute(ATTR_ERROR_TYPE, errorType(error));
  if (error instanceof Error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else {
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
  }
}
