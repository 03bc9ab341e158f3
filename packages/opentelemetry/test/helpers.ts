import type { AcquireRequest, ExtendRequest, LockBackend, ReleaseRequest } from '@deadbolt/core';
import { BackendError } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import type { Attributes } from '@opentelemetry/api';
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type DeadboltInstrumentationOptions, instrumentDeadbolt } from '../src/index.js';

/** A reader that exports nothing: a test collects what it wants when it wants. */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/**
 * An SDK tracer provider and meter provider with in-memory exporters, and an instrumentation
 * sending to them. `using` disables the instrumentation.
 */
export function instrumented(
  options: Omit<DeadboltInstrumentationOptions, 'tracerProvider' | 'meterProvider'> = {},
) {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = instrumentDeadbolt({ ...options, tracerProvider, meterProvider });
  return {
    instrumentation,
    /** For the test's own spans: the caller's request, say. */
    tracer: tracerProvider.getTracer('test'),
    /** Finished spans, in the order they ended. */
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    /** The one finished span named `name`. */
    span(name: string): ReadableSpan {
      const found = exporter.getFinishedSpans().filter((span) => span.name === name);
      if (found.length !== 1) throw new Error(`expected one ${name} span, found ${found.length}`);
      return found[0]!;
    },
    /** The points of the metric `name`, as `{ attributes, value }`. */
    async points<Value = number>(
      name: string,
    ): Promise<{ attributes: Attributes; value: Value }[]> {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw errors[0];
      const metric = resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .find((candidate) => candidate.descriptor.name === name);
      return ((metric?.dataPoints ?? []) as DataPoint<Value>[]).map(({ attributes, value }) => ({
        attributes,
        value,
      }));
    },
    [Symbol.dispose]: () => instrumentation.disable(),
  };
}

/**
 * A real MemoryBackend behind a wrapper that can make `extend` or `release` fail the way a backend
 * fails when its server cannot be reached. Every answer it gives comes from the MemoryBackend.
 */
export class FaultyBackend implements LockBackend {
  readonly inner = new MemoryBackend();
  failExtend = false;
  failRelease = false;

  acquire(request: AcquireRequest) {
    return this.inner.acquire(request);
  }

  async extend(request: ExtendRequest) {
    if (this.failExtend) throw new BackendError('extend failed', new Error('ECONNREFUSED'));
    return this.inner.extend(request);
  }

  async release(request: ReleaseRequest) {
    if (this.failRelease) throw new BackendError('release failed', new Error('ECONNREFUSED'));
    return this.inner.release(request);
  }
}
