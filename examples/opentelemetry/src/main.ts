// Two workers, each with its own LockManager as if they were separate processes, run a job under
// one lock. The second asks while the first holds it, so it waits and the release hands it over.
// @deadbolt/opentelemetry turns it into spans and metrics; in-memory exporters stand in for OTLP
// or Prometheus, and the program prints what they received.
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { instrumentDeadbolt } from '@deadbolt/opentelemetry';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** A metric reader that exports nothing by itself: the program collects once, at the end. */
class CollectOnDemand extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

// What the NodeSDK does at `start()`: global providers and a context manager, so that spans find
// their parent across awaits.
const spanExporter = new InMemorySpanExporter();
const metricReader = new CollectOnDemand();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] }),
);
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [metricReader] }));
// After the providers exist: the instruments are made now.
const instrumentation = instrumentDeadbolt({
  metricAttributes: { key: (key) => key.split(':')[0] }, // 'report:daily' -> 'report'
});

const backend = new MemoryBackend();
const tracer = trace.getTracer('example');

/** One job of `worker`: its own span, and `work` under the lock. */
async function job(worker: string, work: () => Promise<unknown>): Promise<void> {
  const locks = new LockManager({ backend, owner: worker });
  await tracer.startActiveSpan(`job ${worker}`, async (span) => {
    try {
      await locks.withLock('report:daily', work, { wait: 5_000 });
    } finally {
      span.end();
    }
  });
}

let firstHolds = () => {};
const heldByFirst = new Promise<void>((resolve) => {
  firstHolds = resolve;
});
await Promise.all([
  job('worker-1', async () => {
    firstHolds();
    await sleep(100);
  }),
  // Asks once worker-1 holds; its job span is the root of a trace of its own.
  heldByFirst.then(() => job('worker-2', () => sleep(20))),
]);
instrumentation.disable();
await backend.close();

console.log('spans:');
printTree(spanExporter.getFinishedSpans());
console.log('\nmetrics:');
await printMetrics();

/** Each trace as a tree, children in the order they started. */
function printTree(spans: ReadableSpan[]): void {
  const byStart = [...spans].sort((a, b) => hrToMs(a.startTime) - hrToMs(b.startTime));
  const childrenOf = (parent: ReadableSpan | undefined) =>
    byStart.filter((span) => span.parentSpanContext?.spanId === parent?.spanContext().spanId);
  const print = (span: ReadableSpan, indent: string, branch: string) => {
    console.log(`${indent}${branch}${describe(span)}`);
    const children = childrenOf(span);
    const below = indent + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ');
    children.forEach((child, index) => {
      print(child, below, index === children.length - 1 ? '└─ ' : '├─ ');
    });
  };
  for (const root of childrenOf(undefined)) print(root, '', '');
}

/** `name (duration)` and the span's deadbolt attributes by their last part, and its error. */
function describe(span: ReadableSpan): string {
  const duration = `${hrToMs(span.duration).toFixed(1)} ms`;
  const attributes = Object.entries(span.attributes)
    .filter(
      ([name]) =>
        name.startsWith('deadbolt.') && !name.endsWith('weight') && !name.endsWith('limit'),
    )
    .map(([name, value]) => `${name.split('.').at(-1)}=${value}`);
  const error = span.status.message === undefined ? [] : [`error="${span.status.message}"`];
  return [`${span.name} (${duration})`, ...attributes, ...error].join(' ');
}

async function printMetrics(): Promise<void> {
  const { resourceMetrics } = await metricReader.collect();
  for (const metric of resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics)) {
    for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
      const labels = Object.entries(point.attributes)
        .map(([name, value]) => `${name.split('.').at(-1)}=${value}`)
        .join(', ');
      const { value } = point;
      const shown =
        typeof value === 'number'
          ? `${value}`
          : `count=${value.count} sum=${(value.sum ?? 0).toFixed(3)} ${metric.descriptor.unit}`;
      console.log(`${metric.descriptor.name} {${labels}} ${shown}`);
    }
  }
}

function hrToMs([seconds, nanoseconds]: [number, number]): number {
  return seconds * 1_000 + nanoseconds / 1e6;
}
