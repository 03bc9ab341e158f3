import {
  BACKEND_CAPABILITIES,
  type BackendCapability,
  type LockBackend,
  LockManager,
  QUEUE_PLACE_TTL_MS,
  READ_WRITE_LIMIT,
} from '@deadbolt/core';
import { expect, it } from 'vitest';
import {
  type ConformanceContext,
  eventually,
  expectGranted,
  type QueueingBackend,
  queued,
  request,
  sleep,
  withFeature,
} from './context.js';

/**
 * `inner`, with every queue place it is asked for lasting `placeTtlMs` instead of the manager's
 * `QUEUE_PLACE_TTL_MS`. A waiter whose event loop stalls for longer than half of that loses its
 * turn, as designed (it may have died); a loaded machine stalls test workers that long, and a
 * test of arrival order must not count that against the backend.
 */
function withPlacesLasting(inner: LockBackend, placeTtlMs: number): LockBackend {
  const { queue } = inner;
  if (!queue) return inner;
  // Every other capability as the backend has it, so the wrapper cannot fall behind the contract.
  const capabilities = Object.fromEntries(
    Object.keys(BACKEND_CAPABILITIES).flatMap((name) => {
      const capability = inner[name as BackendCapability];
      return capability ? [[name, capability]] : [];
    }),
  );
  return {
    ...capabilities,
    acquire: (request) => inner.acquire(request),
    extend: (request) => inner.extend(request),
    release: (request) => inner.release(request),
    queue: { acquire: (request) => queue.acquire({ ...request, placeTtlMs }) },
  };
}

export function fairTests(ctx: ConformanceContext): void {
  it('grants a fair lock in arrival order', async () => {
    const key = ctx.key();
    const backend = withPlacesLasting(ctx.backend, 60_000);
    const [holderSide, ...waiterSides] = Array.from(
      { length: 21 },
      () => new LockManager({ backend }),
    );
    const holder = await holderSide!.acquire(key);
    const order: number[] = [];
    const waiting: Promise<void>[] = [];
    for (const [index, locks] of waiterSides.entries()) {
      waiting.push(
        locks.acquire(key, { fair: true, wait: 60_000 }).then(async (lock) => {
          order.push(index);
          await lock.release();
        }),
      );
      // The next waiter arrives only once this one has its queue place.
      const { inspection } = ctx.backend;
      if (inspection) {
        await eventually(
          `waiter ${index} is queued`,
          async () => (await inspection.inspect({ key }))?.queued === index + 1,
        );
      } else {
        await sleep(50);
      }
    }
    await holder.release();
    await Promise.all(waiting);
    expect(order).toEqual(waiterSides.map((_, index) => index));
  });

  it(`a dead waiter stops blocking a fair queue within ${QUEUE_PLACE_TTL_MS} ms`, async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    // A waiter takes a queue place and then never attempts again, as if its process died.
    await backend.queue.acquire(queued(key, 'dead', { placeTtlMs: QUEUE_PLACE_TTL_MS }));
    await backend.release({ key, token: 'holder' });
    const [next] = ctx.managers(1);
    const lock = await next!.acquire(key, { fair: true, wait: QUEUE_PLACE_TTL_MS + 5_000 });
    expect(lock.held).toBe(true);
    await lock.release();
  });

  it('keeps the position of a place its waiter renews, and puts a new place last', async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    for (const token of ['first', 'second', 'first', 'third', 'second']) {
      expect((await backend.queue.acquire(queued(key, token))).ok).toBe(false);
    }
    await backend.release({ key, token: 'holder' });
    expect((await backend.queue.acquire(queued(key, 'second'))).ok).toBe(false);
    expectGranted(await backend.queue.acquire(queued(key, 'first')));
    await backend.release({ key, token: 'first' });
    expect((await backend.queue.acquire(queued(key, 'third'))).ok).toBe(false);
    expectGranted(await backend.queue.acquire(queued(key, 'second')));
  });

  it('orders places by the order a request gives, the same on every backend', async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    expect((await backend.queue.acquire(queued(key, 'late', { order: 300 }))).ok).toBe(false);
    expect((await backend.queue.acquire(queued(key, 'early', { order: 100 }))).ok).toBe(false);
    await backend.release({ key, token: 'holder' });
    expect((await backend.queue.acquire(queued(key, 'late', { order: 300 }))).ok).toBe(false);
    expectGranted(await backend.queue.acquire(queued(key, 'early', { order: 100 })));
  });

  it('keeps the new place of a waiter that asks again after its old place ran out', async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    expect((await backend.queue.acquire(queued(key, 'paused', { placeTtlMs: 100 }))).ok).toBe(
      false,
    );
    // Paused past its place's TTL: the place ran out, and asking again takes a new one.
    await sleep(200);
    expect((await backend.queue.acquire(queued(key, 'paused'))).ok).toBe(false);
    expect((await backend.queue.acquire(queued(key, 'later'))).ok).toBe(false);
    await backend.release({ key, token: 'holder' });
    // 'paused' queued again before 'later' did: it is first.
    expect((await backend.queue.acquire(queued(key, 'later'))).ok).toBe(false);
    expectGranted(await backend.queue.acquire(queued(key, 'paused')));
  });

  it('refuses an unqueued request while someone queues (a waiting writer blocks readers)', async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    const permits = { limit: READ_WRITE_LIMIT };
    expectGranted(await backend.acquire(request(key, 'reader', permits)));
    const writer = queued(key, 'writer', {
      ...permits,
      weight: READ_WRITE_LIMIT,
      placeTtlMs: 5_000,
    });
    expect((await backend.queue.acquire(writer)).ok).toBe(false);
    expect((await backend.acquire(request(key, 'late-reader', permits))).ok).toBe(false);
    await backend.release({ key, token: 'reader' });
    expectGranted(await backend.queue.acquire(writer));
  });

  it('gives a queued token that holds the lock again at once, past the queue', async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    const first = expectGranted(await backend.queue.acquire(queued(key, 'holder')));
    expect((await backend.queue.acquire(queued(key, 'waiter'))).ok).toBe(false);
    // Its reply was lost: it asks again, and holds with a new fence.
    const again = expectGranted(await backend.queue.acquire(queued(key, 'holder')));
    expect(again.fence).toBeGreaterThan(first.fence);
  });

  it('lets the next in line move up when a queued waiter gives up its place', async () => {
    const backend = withFeature<QueueingBackend>(ctx, 'queue');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    expect((await backend.queue.acquire(queued(key, 'first'))).ok).toBe(false);
    expect((await backend.queue.acquire(queued(key, 'second'))).ok).toBe(false);
    await backend.release({ key, token: 'holder' });
    expect((await backend.queue.acquire(queued(key, 'second'))).ok).toBe(false);
    // The head leaves without taking it: holding nothing, it still frees the way.
    expect(await backend.release({ key, token: 'first' })).toBe(false);
    expectGranted(await backend.queue.acquire(queued(key, 'second')));
  });

  it('serves a read-write writer while readers keep arriving', async () => {
    const key = ctx.key();
    const [writerSide, ...readerSides] = ctx.managers(5);
    let stop = false;
    const readerLoops = readerSides.map(async (locks) => {
      const lock = locks.readWriteLock(key);
      while (!stop) await lock.read.withLock(() => sleep(10), { wait: 60_000 });
    });
    await sleep(50);
    // Readers overlap all the time; only writer priority lets the writer in.
    const writer = await writerSide!.readWriteLock(key).write.acquire({ wait: 10_000 });
    expect(writer.held).toBe(true);
    await writer.release();
    stop = true;
    await Promise.all(readerLoops);
  });
}
