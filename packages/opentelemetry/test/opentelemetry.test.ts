import { channel } from 'node:diagnostics_channel';
import { BackendError, LockLostError, LockManager, LockTimeoutError } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { context, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { Histogram } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FaultyBackend, instrumented } from './helpers.js';

beforeAll(() => {
  // What NodeSDK registers: the active span follows async calls.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
afterAll(() => {
  context.disable();
});
afterEach(() => {
  vi.useRealTimers();
});

const KEY = 'deadbolt.lock.key';
const OWNER = 'deadbolt.lock.owner';

function spanId(span: ReadableSpan): string {
  return span.spanContext().spanId;
}

/** The spans named `name` of the manager with `owner`, in the order they ended. */
function spansOf(spans: ReadableSpan[], name: string, owner: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name && span.attributes[OWNER] === owner);
}

describe('spans', () => {
  it('traces one withLock as the wait, then the hold, both children of the caller’s span', async () => {
    using otel = instrumented();
    const locks = new LockManager({ backend: new MemoryBackend(), owner: 'web' });
    let fence = 0;
    await otel.tracer.startActiveSpan('request', async (request) => {
      await locks.withLock('invoice:42', (lock) => {
        fence = lock.fence;
      });
      request.end();
    });

    expect(otel.spans().map((span) => span.name)).toEqual([
      'deadbolt.acquire',
      'deadbolt.hold',
      'request',
    ]);
    const request = otel.span('request');
    const acquire = otel.span('deadbolt.acquire');
    const hold = otel.span('deadbolt.hold');
    expect(acquire.parentSpanContext?.spanId).toBe(spanId(request));
    expect(hold.parentSpanContext?.spanId).toBe(spanId(request));
    expect(hold.links.map((link) => link.context.spanId)).toEqual([spanId(acquire)]);
    const lock = { [KEY]: 'invoice:42', [OWNER]: 'web', 'deadbolt.lock.weight': 1 };
    expect(acquire.attributes).toEqual({
      ...lock,
      'deadbolt.lock.limit': 1,
      'deadbolt.acquire.waits': true,
      'deadbolt.acquire.outcome': 'acquired',
      'deadbolt.lock.fence': fence,
      'deadbolt.lock.handed_off': false,
    });
    expect(hold.attributes).toEqual({
      ...lock,
      'deadbolt.lock.limit': 1,
      'deadbolt.lock.fence': fence,
      'deadbolt.lock.handed_off': false,
      'deadbolt.lock.ttl_ms': 30_000,
      'deadbolt.hold.outcome': 'released',
    });
    expect(acquire.status.code).toBe(SpanStatusCode.UNSET);
    expect(hold.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('parents each hold under its own caller when callers of one manager queue for one key', async () => {
    using otel = instrumented();
    const locks = new LockManager({ backend: new MemoryBackend(), owner: 'o' });
    const callers = ['a', 'b', 'c', 'd'];
    await Promise.all(
      callers.map((name) =>
        otel.tracer.startActiveSpan(`caller ${name}`, async (span) => {
          await locks.withLock('queue', () => new Promise((resolve) => setImmediate(resolve)));
          span.end();
        }),
      ),
    );
    for (const name of callers) {
      const caller = spanId(otel.span(`caller ${name}`));
      const children = otel.spans().filter((span) => span.parentSpanContext?.spanId === caller);
      expect(children.map((span) => span.name).sort()).toEqual([
        'deadbolt.acquire',
        'deadbolt.hold',
      ]);
      const acquire = children.find((span) => span.name === 'deadbolt.acquire')!;
      const hold = children.find((span) => span.name === 'deadbolt.hold')!;
      expect(hold.links.map((link) => link.context.spanId)).toEqual([spanId(acquire)]);
      expect(hold.attributes['deadbolt.lock.fence']).toBe(
        acquire.attributes['deadbolt.lock.fence'],
      );
    }
  });

  it('links the hold to its wait when the caller has no span (each is then a trace’s root)', async () => {
    using otel = instrumented();
    const locks = new LockManager({ backend: new MemoryBackend() });
    await locks.withLock('job', () => undefined);
    const acquire = otel.span('deadbolt.acquire');
    const hold = otel.span('deadbolt.hold');
    expect(acquire.parentSpanContext).toBeUndefined();
    expect(hold.parentSpanContext).toBeUndefined();
    expect(hold.links.map((link) => link.context.spanId)).toEqual([spanId(acquire)]);
  });

  it('marks a wait that timed out, was aborted, or was refused by tryAcquire', async () => {
    using otel = instrumented();
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend, owner: 'holder' }).acquire('busy');
    const locks = new LockManager({ backend, owner: 'waiter' });
    await expect(locks.acquire('busy', { wait: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
    const controller = new AbortController();
    const aborted = locks.acquire('busy', { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect(await locks.tryAcquire('busy')).toBeNull();
    await holder.release();

    const [timedOut, abortedSpan, refused] = spansOf(otel.spans(), 'deadbolt.acquire', 'waiter');
    expect(timedOut?.attributes).toMatchObject({
      'deadbolt.acquire.outcome': 'timed_out',
      'error.type': 'LockTimeoutError',
    });
    expect(timedOut?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: expect.stringMatching(/could not acquire "busy" within \d+ ms/),
    });
    expect(timedOut?.events.map((event) => event.name)).toEqual(['exception']);
    expect(abortedSpan?.attributes).toMatchObject({
      'deadbolt.acquire.outcome': 'aborted',
      'error.type': 'AbortError',
    });
    expect(abortedSpan?.status.code).toBe(SpanStatusCode.ERROR);
    expect(refused?.attributes).toMatchObject({
      'deadbolt.acquire.outcome': 'refused',
      'deadbolt.acquire.waits': false,
    });
    expect(refused?.status.code).toBe(SpanStatusCode.UNSET);
    expect(spansOf(otel.spans(), 'deadbolt.hold', 'waiter')).toEqual([]);

    expect(await otel.points('deadbolt.lock.timeouts')).toEqual([
      { attributes: { [OWNER]: 'waiter' }, value: 1 },
    ]);
    const waits = await otel.points<Histogram>('deadbolt.lock.wait.duration');
    expect(
      waits.map(({ attributes, value }) => [attributes['deadbolt.acquire.outcome'], value.count]),
    ).toEqual([
      ['acquired', 1],
      ['timed_out', 1],
      ['aborted', 1],
      ['refused', 1],
    ]);
  });

  it('marks a lock handed over on release, and parents its hold under the waiter’s span, not the releaser’s', async () => {
    vi.useFakeTimers();
    using otel = instrumented();
    const backend = new MemoryBackend();
    const holder = await new LockManager({ backend, owner: 'first' }).acquire('handed');
    const waiter = new LockManager({ backend, owner: 'second' });
    const waiting = otel.tracer.startActiveSpan('waiter-request', async (span) => {
      const lock = await waiter.acquire('handed', { wait: 60_000 });
      span.end();
      return lock;
    });
    await vi.advanceTimersByTimeAsync(300);
    await otel.tracer.startActiveSpan('holder-request', async (span) => {
      await holder.release();
      span.end();
    });
    await (await waiting).release();

    const [acquire] = spansOf(otel.spans(), 'deadbolt.acquire', 'second');
    const [hold] = spansOf(otel.spans(), 'deadbolt.hold', 'second');
    expect(acquire?.attributes['deadbolt.lock.handed_off']).toBe(true);
    expect(hold?.attributes['deadbolt.lock.handed_off']).toBe(true);
    expect(hold?.parentSpanContext?.spanId).toBe(spanId(otel.span('waiter-request')));
    expect(await otel.points('deadbolt.lock.handoffs')).toEqual([
      { attributes: { [OWNER]: 'second' }, value: 1 },
    ]);
  });

  it('ends a lost lock’s hold span with an error, once, though it is released after', async () => {
    using otel = instrumented();
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend, owner: 'o' });
    const lock = await locks.acquire('taken', { ttl: 5_000 });
    // The backend forgets the lease (a failover, say): the next extension finds it gone.
    await backend.release({ key: 'taken', token: lock.token });
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(await lock.release()).toBe(false);

    const hold = otel.span('deadbolt.hold');
    expect(hold.attributes).toMatchObject({
      'deadbolt.hold.outcome': 'lost',
      'error.type': 'LockLostError',
    });
    expect(hold.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: expect.stringContaining('lost the lock on "taken"'),
    });
    expect(await otel.points('deadbolt.lock.losses')).toEqual([
      { attributes: { [OWNER]: 'o' }, value: 1 },
    ]);
    expect(await otel.points('deadbolt.lock.held')).toEqual([
      { attributes: { [OWNER]: 'o' }, value: 0 },
    ]);
    const holds = await otel.points<Histogram>('deadbolt.lock.hold.duration');
    expect(holds.map(({ attributes, value }) => [attributes, value.count])).toEqual([
      [{ [OWNER]: 'o', 'deadbolt.hold.outcome': 'lost' }, 1],
    ]);
  });

  it('puts extensions and failed extensions and releases on the hold span, and counts the failures', async () => {
    using otel = instrumented();
    const backend = new FaultyBackend();
    const locks = new LockManager({ backend, owner: 'o' });
    const result = await locks.withLock('flaky', async (lock) => {
      await lock.extend(10_000);
      backend.failExtend = true;
      await expect(lock.extend()).rejects.toBeInstanceOf(BackendError);
      backend.failRelease = true;
      return 'done';
    });
    expect(result).toBe('done');

    const hold = otel.span('deadbolt.hold');
    expect(hold.events.map(({ name, attributes }) => [name, attributes])).toEqual([
      [
        'deadbolt.lock.extended',
        { 'deadbolt.lock.ttl_ms': 10_000, 'deadbolt.extend.automatic': false },
      ],
      [
        'deadbolt.lock.extend_failed',
        {
          'error.type': 'BackendError',
          'exception.message': expect.stringContaining('extend failed'),
          'deadbolt.extend.automatic': false,
        },
      ],
      [
        'deadbolt.lock.release_failed',
        {
          'error.type': 'BackendError',
          'exception.message': expect.stringContaining('release failed'),
          'deadbolt.release.during': 'release',
        },
      ],
      // The SDK names an exception by its `code` when it has one.
      ['exception', expect.objectContaining({ 'exception.type': 'BACKEND' })],
    ]);
    expect(hold.attributes['deadbolt.hold.outcome']).toBe('release_failed');
    expect(hold.status.code).toBe(SpanStatusCode.ERROR);

    const failure = { [OWNER]: 'o', 'error.type': 'BackendError' };
    expect(await otel.points('deadbolt.lock.extend_failures')).toEqual([
      { attributes: failure, value: 1 },
    ]);
    expect(await otel.points('deadbolt.lock.release_failures')).toEqual([
      { attributes: failure, value: 1 },
    ]);
    expect(await otel.points('deadbolt.lock.held')).toEqual([
      { attributes: { [OWNER]: 'o' }, value: 0 },
    ]);
  });

  it('starts the hold of a resumed lock in the resuming caller’s span, with no wait to link', async () => {
    using otel = instrumented();
    const backend = new MemoryBackend();
    const scheduled = await new LockManager({ backend, owner: 'scheduler' }).acquire('job:7');
    const worker = new LockManager({ backend, owner: 'worker' });
    await otel.tracer.startActiveSpan('work', async (span) => {
      const lock = await worker.resume(scheduled.toHandle());
      await lock.release();
      span.end();
    });
    const [hold] = spansOf(otel.spans(), 'deadbolt.hold', 'worker');
    expect(hold?.parentSpanContext?.spanId).toBe(spanId(otel.span('work')));
    expect(hold?.links).toEqual([]);
    expect(spansOf(otel.spans(), 'deadbolt.acquire', 'worker')).toEqual([]);
  });
});

describe('metrics', () => {
  it('measures waits and holds in seconds', async () => {
    vi.useFakeTimers();
    using otel = instrumented();
    const backend = new MemoryBackend();
    const first = await new LockManager({ backend, owner: 'first' }).acquire('timed');
    const waiting = new LockManager({ backend, owner: 'second' }).acquire('timed', {
      wait: 60_000,
    });
    await vi.advanceTimersByTimeAsync(300);
    await first.release();
    const second = await waiting;
    await vi.advanceTimersByTimeAsync(1_500);
    await second.release();

    const durations = async (name: string) =>
      (await otel.points<Histogram>(name)).map(({ attributes, value }) => [
        attributes[OWNER],
        value.sum,
      ]);
    expect(await durations('deadbolt.lock.wait.duration')).toEqual([
      ['first', 0],
      ['second', 0.3],
    ]);
    expect(await durations('deadbolt.lock.hold.duration')).toEqual([
      ['first', 0.3],
      ['second', 1.5],
    ]);
  });

  it('counts the locks held by each owner, and labels by key only when asked, mapped to a few groups', async () => {
    using otel = instrumented({
      metricAttributes: { key: (key) => key.split(':')[0], owner: false },
    });
    const backend = new MemoryBackend();
    const alpha = new LockManager({ backend, owner: 'alpha' });
    const beta = new LockManager({ backend, owner: 'beta' });
    const held = [
      await alpha.acquire('invoice:1'),
      await alpha.acquire('invoice:2'),
      await beta.acquire('report:1'),
    ];
    expect(await otel.points('deadbolt.lock.held')).toEqual([
      { attributes: { [KEY]: 'invoice' }, value: 2 },
      { attributes: { [KEY]: 'report' }, value: 1 },
    ]);
    for (const lock of held) await lock.release();
    expect((await otel.points('deadbolt.lock.held')).map(({ value }) => value)).toEqual([0, 0]);
    // Spans keep the whole key and the owner.
    expect(
      otel.spans().map((span) => [span.attributes[KEY], span.attributes[OWNER]]),
    ).toContainEqual(['report:1', 'beta']);
  });

  it('tells two managers apart by owner', async () => {
    using otel = instrumented();
    const backend = new MemoryBackend();
    await new LockManager({ backend, owner: 'alpha' }).withLock('shared', () => undefined);
    await new LockManager({ backend, owner: 'beta' }).withLock('shared', () => undefined);
    const holds = await otel.points<Histogram>('deadbolt.lock.hold.duration');
    expect(holds.map(({ attributes, value }) => [attributes, value.count])).toEqual([
      [{ [OWNER]: 'alpha', 'deadbolt.hold.outcome': 'released' }, 1],
      [{ [OWNER]: 'beta', 'deadbolt.hold.outcome': 'released' }, 1],
    ]);
    expect(spansOf(otel.spans(), 'deadbolt.hold', 'alpha')).toHaveLength(1);
    expect(spansOf(otel.spans(), 'deadbolt.hold', 'beta')).toHaveLength(1);
  });
});

describe('disable()', () => {
  it('stops every span and measurement, and takes the locks it counted out of `held`', async () => {
    const otel = instrumented();
    const backend = new MemoryBackend();
    const locks = new LockManager({ backend, owner: 'o' });
    const first = await locks.acquire('a');
    const second = await locks.acquire('b');
    await first.release();
    expect(await otel.points('deadbolt.lock.held')).toEqual([
      { attributes: { [OWNER]: 'o' }, value: 1 },
    ]);

    otel.instrumentation.disable();
    otel.instrumentation.disable();
    const spansBefore = otel.spans().map((span) => span.name);
    expect(spansBefore).toEqual(['deadbolt.acquire', 'deadbolt.acquire', 'deadbolt.hold']);
    expect(await otel.points('deadbolt.lock.held')).toEqual([
      { attributes: { [OWNER]: 'o' }, value: 0 },
    ]);
    for (const name of ['acquired', 'released', 'lost', 'tracing:deadbolt:acquire:start']) {
      const channelName = name.startsWith('tracing:') ? name : `deadbolt:${name}`;
      expect(channel(channelName).hasSubscribers, channelName).toBe(false);
    }

    await second.release();
    await locks.withLock('c', () => undefined);
    const other = await new LockManager({ backend }).acquire('c');
    await expect(locks.acquire('c', { wait: 10 })).rejects.toBeInstanceOf(LockTimeoutError);
    await other.release();
    expect(otel.spans().map((span) => span.name)).toEqual(spansBefore);
    expect(await otel.points('deadbolt.lock.held')).toEqual([
      { attributes: { [OWNER]: 'o' }, value: 0 },
    ]);
    expect(await otel.points('deadbolt.lock.timeouts')).toEqual([]);
    const holds = await otel.points<Histogram>('deadbolt.lock.hold.duration');
    expect(holds.map(({ value }) => value.count)).toEqual([1]);
  });
});
