import { AsyncLocalStorage } from 'node:async_hooks';
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { AcquireTraceContext } from '@deadbolt/core';
import { type MeterProvider, metrics, type TracerProvider, trace } from '@opentelemetry/api';
import { SCOPE_NAME } from './attributes.js';
import { LockMetrics, type MetricAttributeOptions } from './metrics.js';
import { LockSpans } from './spans.js';
import { EVENT_NAMES, type LockTelemetry } from './telemetry.js';

/** Where {@link instrumentDeadbolt} sends spans and metrics, and which labels metrics carry. */
export interface DeadboltInstrumentationOptions {
  /**
   * Makes the `deadbolt.acquire` and `deadbolt.hold` spans.
   *
   * @default the global tracer provider (`trace.getTracerProvider()`), which also serves one
   *   registered later
   */
  tracerProvider?: TracerProvider;
  /**
   * Makes the `deadbolt.lock.*` instruments.
   *
   * @default the global meter provider (`metrics.getMeterProvider()`) as it is at the call: with
   *   none registered yet, the metrics go nowhere, so call this after the SDK has started
   */
  meterProvider?: MeterProvider;
  /**
   * Which lock fields label the metrics. Spans always carry the key and owner: a span is one
   * operation, while each distinct label of a metric is a time series kept for good.
   *
   * @default `{ key: false, owner: true }`
   */
  metricAttributes?: MetricAttributeOptions;
}

/** A running instrumentation; `using` disables it at the end of the block. */
export interface DeadboltInstrumentation {
  /**
   * Unsubscribes from every channel: no span or measurement after this. Spans still open (locks
   * held now) are dropped, and `deadbolt.lock.held` goes back down by the locks it counts.
   */
  disable(): void;
  /** {@link DeadboltInstrumentation.disable}. */
  [Symbol.dispose](): void;
}

/**
 * Turns the events of every `LockManager` in this process into OpenTelemetry spans and metrics,
 * by subscribing to the `deadbolt:*` diagnostics channels and `tracing:deadbolt:acquire`. Each
 * call subscribes once more: call it once per process.
 *
 * @param options - providers (global ones by default) and metric labels
 * @returns the running instrumentation, to `disable()`
 * @example
 * ```ts
 * import { NodeSDK } from '@opentelemetry/sdk-node';
 * import { instrumentDeadbolt } from '@deadbolt/opentelemetry';
 *
 * const sdk = new NodeSDK({ traceExporter, metricReader });
 * sdk.start();
 * const instrumentation = instrumentDeadbolt({
 *   metricAttributes: { key: (key) => key.split(':')[0] }, // 'invoice:42' -> 'invoice'
 * });
 * // …
 * instrumentation.disable();
 * ```
 */
export function instrumentDeadbolt(
  options: DeadboltInstrumentationOptions = {},
): DeadboltInstrumentation {
  const {
    tracerProvider = trace.getTracerProvider(),
    meterProvider = metrics.getMeterProvider(),
    metricAttributes,
  } = options;
  const sinks: LockTelemetry[] = [
    new LockSpans(tracerProvider.getTracer(SCOPE_NAME)),
    new LockMetrics(meterProvider.getMeter(SCOPE_NAME), metricAttributes),
  ];
  // The acquisition call that code runs in: an `acquired` event is published inside the call it
  // ends, and this store, set for the call by its `start`, tells which one it was.
  const calls = new AsyncLocalStorage<AcquireTraceContext>();
  const callStart = channel('tracing:deadbolt:acquire:start');
  callStart.bindStore(calls);

  const stops = [
    listen<AcquireTraceContext>('tracing:deadbolt:acquire:start', (call) => {
      for (const sink of sinks) sink.callStarted(call);
    }),
    // `asyncEnd` comes after `error` too, once `result` or `error` is set.
    listen<AcquireTraceContext>('tracing:deadbolt:acquire:asyncEnd', (call) => {
      for (const sink of sinks) sink.callEnded(call);
    }),
    ...EVENT_NAMES.map((name) =>
      listen<unknown>(`deadbolt:${name}`, (event) => {
        const call = calls.getStore();
        for (const sink of sinks) (sink.events[name] as EventHandler)(event, call);
      }),
    ),
  ];
  let enabled = true;
  const disable = () => {
    if (!enabled) return;
    enabled = false;
    callStart.unbindStore(calls);
    // Before Node 24 an enabled storage adds work to every promise the process creates.
    calls.disable();
    for (const stop of stops) stop();
    for (const sink of sinks) sink.stop();
  };
  return { disable, [Symbol.dispose]: disable };
}

type EventHandler = (event: unknown, call: AcquireTraceContext | undefined) => void;

/** Subscribes `onMessage` to the channel `name`; the function returned unsubscribes it. */
function listen<Message>(name: string, onMessage: (message: Message) => void): () => void {
  const listener = (message: unknown) => onMessage(message as Message);
  subscribe(name, listener);
  return () => unsubscribe(name, listener);
}
