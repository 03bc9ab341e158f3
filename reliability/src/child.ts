/**
 * A worker process: contends for one lock in a loop and, under it, increments the parent's
 * counter (read, then write read + 1, both carrying the lock's fence). It reports each critical
 * section's interval for the overlap detector, and plays the victim of fault trials on order.
 */
import {
  type AcquireRequest,
  type AcquireResult,
  DeadboltError,
  type HandedOff,
  type Lock,
  type LockBackend,
  LockManager,
  quorum,
} from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';
import { nowMs, sleep } from './clock.js';
import type { BackendSpec, FromWorker, StallOrder, ToWorker, WorkerSummary } from './protocol.js';
import { FAIL_FAST } from './redis-options.js';

/**
 * Passes every call through and notes, on the monotonic clock, when the lease of the last grant
 * began at the earliest: when its acquire request left, or for a lease handed over on release,
 * when the waiter's last request left plus the time the server says passed until the handoff.
 * The detector bounds each holder's lease by that plus the granted TTL (the server counts from
 * later), without trusting anything the lock computes.
 */
class TimedBackend implements LockBackend {
  readonly #inner: LockBackend;
  #lastRequestSentAt = 0;
  lastSentAt = 0;
  lastGrantTtlMs = 0;

  constructor(inner: LockBackend) {
    this.#inner = inner;
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    const sentAt = nowMs();
    this.#lastRequestSentAt = sentAt;
    const result = await this.#inner.acquire(request);
    if (result.ok) {
      this.lastSentAt = sentAt;
      this.lastGrantTtlMs = result.ttlMs;
    }
    return result;
  }

  extend: LockBackend['extend'] = (request) => this.#inner.extend(request);
  release: LockBackend['release'] = (request) => this.#inner.release(request);
  advanceFence: NonNullable<LockBackend['advanceFence']> = (request) =>
    this.#inner.advanceFence?.(request) ?? Promise.resolve();
  waitForRelease = async (
    key: string,
    signal: AbortSignal,
    since?: number,
    token?: string,
  ): Promise<HandedOff | undefined> => {
    const inner = this.#inner;
    if (inner.waitForRelease === undefined) return new Promise(() => undefined);
    const handedOff = await inner.waitForRelease(key, signal, since, token);
    if (!handedOff) return undefined;
    this.lastSentAt = this.#lastRequestSentAt + handedOff.afterMs;
    this.lastGrantTtlMs = handedOff.ttlMs;
    return handedOff;
  };
  close = async (): Promise<void> => {
    await this.#inner.close?.();
  };
}

function send(message: FromWorker): void {
  process.send?.(message);
}

const pendingReplies = new Map<number, (message: ToWorker) => void>();
let nextId = 1;

/** One request to the parent's store, answered by a `read-reply` or `write-reply`. */
function ask<T extends ToWorker>(message: FromWorker & { id: number }): Promise<T> {
  return new Promise((resolve) => {
    pendingReplies.set(message.id, resolve as (message: ToWorker) => void);
    send(message);
  });
}

let stallOrder: StallOrder | undefined;
let resumeWaiter: (() => void) | undefined;
let finishing = false;
const summary: WorkerSummary = {
  acquisitions: 0,
  acquireErrors: {},
  abandoned: 0,
  releasesFalse: 0,
  releaseErrors: 0,
};

function openBackend(spec: BackendSpec): { backend: LockBackend; clients: Redis[] } {
  if (spec.kind === 'single') {
    const client = new Redis(spec.url);
    client.on('error', () => undefined);
    return { backend: new IoredisBackend(client), clients: [client] };
  }
  const clients = spec.urls.map((url) => {
    const client = new Redis(url, FAIL_FAST);
    client.on('error', () => undefined);
    return client;
  });
  return { backend: quorum(clients.map((client) => new IoredisBackend(client))), clients };
}

async function release(lock: Lock): Promise<boolean> {
  try {
    const released = await lock.release();
    if (!released) summary.releasesFalse += 1;
    return released;
  } catch {
    summary.releaseErrors += 1;
    return false;
  }
}

/** Holds the lock through a fault trial, as `order` says; returns once the section is over. */
async function stall(order: StallOrder, lock: Lock, value: number, leaseEnd: number) {
  let abortedAt: number | null = null;
  lock.signal.addEventListener('abort', () => {
    abortedAt = nowMs();
  });
  send({ type: 'stalled', trial: order.trial, fence: lock.fence, leaseEnd });
  if (order.mode === 'kill') return new Promise<never>(() => undefined);
  if (order.mode === 'freeze' && order.resumeOnMessage) {
    await new Promise<void>((resolve) => {
      resumeWaiter = resolve;
    });
  } else {
    await sleep(order.holdMs);
  }
  const resumedAt = nowMs();
  // The signal first, as its timer left it; then `held`, which checks the clock (and aborts it).
  const signalAbortedAtWrite = lock.signal.aborted;
  const heldAtWrite = lock.held;
  if (order.mode === 'freeze') {
    // On purpose: a paused process that does not look at its signal writes anyway.
    const reply = await ask<Extract<ToWorker, { type: 'write-reply' }>>({
      type: 'write',
      id: nextId++,
      fence: lock.fence,
      value: value + 1,
    });
    send({ type: 'exit', fence: lock.fence, end: nowMs() });
    send({
      type: 'frozen-report',
      trial: order.trial,
      fence: lock.fence,
      leaseEnd,
      abortedAt,
      resumedAt,
      signalAbortedAtWrite,
      heldAtWrite,
      writeAccepted: reply.ok,
    });
    await release(lock);
    return;
  }
  if (heldAtWrite) {
    await ask({ type: 'write', id: nextId++, fence: lock.fence, value: value + 1 });
  }
  send({ type: 'exit', fence: lock.fence, end: nowMs() });
  const released = await release(lock);
  send({
    type: 'hold-report',
    trial: order.trial,
    fence: lock.fence,
    held: heldAtWrite,
    released,
  });
}

async function run(start: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const { backend: inner, clients } = openBackend(start.backend);
  const backend = new TimedBackend(inner);
  const locks = new LockManager({ backend });
  send({ type: 'ready' });
  while (!finishing) {
    let lock: Lock;
    try {
      lock = await locks.acquire(start.key, { ttl: start.ttlMs, wait: start.waitMs });
    } catch (error) {
      const code = error instanceof DeadboltError ? error.code : 'OTHER';
      summary.acquireErrors[code] = (summary.acquireErrors[code] ?? 0) + 1;
      send({ type: 'acquire-error', code, at: nowMs() });
      // A server that is down fails fast: do not spin on it.
      if (code !== 'LOCK_TIMEOUT') await sleep(20);
      continue;
    }
    const startAt = nowMs();
    const leaseEnd = backend.lastSentAt + backend.lastGrantTtlMs;
    summary.acquisitions += 1;
    const read = await ask<Extract<ToWorker, { type: 'read-reply' }>>({
      type: 'read',
      id: nextId++,
      fence: lock.fence,
      start: startAt,
      leaseEnd,
    });
    if (!read.ok) {
      send({ type: 'exit', fence: lock.fence, end: nowMs() });
      await release(lock);
      continue;
    }
    const order = stallOrder;
    if (order !== undefined) {
      stallOrder = undefined;
      await stall(order, lock, read.value, leaseEnd);
      continue;
    }
    // A careful holder: `held` is checked against the clock right before the write.
    if (!lock.held) {
      summary.abandoned += 1;
    } else {
      await ask({ type: 'write', id: nextId++, fence: lock.fence, value: read.value + 1 });
    }
    send({ type: 'exit', fence: lock.fence, end: nowMs() });
    await release(lock);
  }
  await backend.close().catch(() => undefined);
  for (const client of clients) client.disconnect();
  process.send?.({ type: 'summary', summary } satisfies FromWorker, () => process.exit(0));
}

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start':
      run(message).catch((error: unknown) => {
        send({ type: 'fatal', message: String((error as Error)?.stack ?? error) });
        process.exit(1);
      });
      return;
    case 'read-reply':
    case 'write-reply': {
      const resolve = pendingReplies.get(message.id);
      pendingReplies.delete(message.id);
      resolve?.(message);
      return;
    }
    case 'stall':
      stallOrder = message;
      return;
    case 'resume':
      resumeWaiter?.();
      resumeWaiter = undefined;
      return;
    case 'finish':
      finishing = true;
      return;
  }
});
