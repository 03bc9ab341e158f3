/**
 * A worker process: contends for one lock in a loop and, under it, increments the parent's
 * counter (read, then write read + 1, both carrying the lock's fence). It reports each critical
 * section's interval for the overlap detector, and plays the victim of fault trials on order.
 */
import {
  type AcquireRequest,
  type AcquireResult,
  DeadboltError,
  type ExtendRequest,
  type FenceCapability,
  type HandoffCapability,
  type Lock,
  type LockBackend,
  LockManager,
  type QueueCapability,
  quorum,
  type ReleaseRequest,
  type WakeUpCapability,
} from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { Redis } from 'ioredis';
import { nowMs, sleep } from './clock.js';
import type { BackendSpec, FromWorker, StallOrder, ToWorker, WorkerSummary } from './protocol.js';
import { FAIL_FAST } from './redis-options.js';

/**
 * Passes every call through and notes, on the monotonic clock, when the lease of the last grant
 * began at the earliest: when its acquire (or last extend) request left, or for a lease handed over
 * on release, when the request it answers left plus the time the server says passed until the
 * handoff.
 * The detector bounds each holder's lease by that plus the granted TTL (the server counts from
 * later), without trusting anything the lock computes.
 */
class TimedBackend implements LockBackend {
  readonly queue?: QueueCapability;
  readonly wakeUps?: WakeUpCapability;
  readonly handoff?: HandoffCapability;
  readonly fences?: FenceCapability;
  readonly #inner: LockBackend;
  /** Per token, the attempt of its last queued request and when that request left. */
  readonly #lastRequests = new Map<string, { attempt: number; sentAt: number }>();
  lastSentAt = 0;
  lastGrantTtlMs = 0;

  constructor(inner: LockBackend) {
    this.#inner = inner;
    const { queue, handoff } = inner;
    if (queue) {
      this.queue = {
        acquire: (request) => {
          const sentAt = nowMs();
          const attempt = request.handoff?.attempt ?? 0;
          this.#lastRequests.set(request.token, { attempt, sentAt });
          return this.#timed(queue.acquire(request), request.token, sentAt);
        },
      };
    }
    if (inner.wakeUps) this.wakeUps = inner.wakeUps;
    if (inner.fences) this.fences = inner.fences;
    if (handoff) {
      this.handoff = {
        waitForGrant: async (request) => {
          const handedOff = await handoff.waitForGrant(request);
          // The lease began after the request that the grant answers left, not any later one.
          const answered = this.#lastRequests.get(request.token);
          if (handedOff && answered?.attempt === handedOff.attempt) {
            this.#lastRequests.delete(request.token);
            this.lastSentAt = answered.sentAt + handedOff.afterMs;
            this.lastGrantTtlMs = handedOff.ttlMs;
          }
          return handedOff;
        },
      };
    }
  }

  acquire(request: AcquireRequest): Promise<AcquireResult> {
    return this.#timed(this.#inner.acquire(request), request.token, nowMs());
  }

  async extend(request: ExtendRequest): Promise<boolean> {
    const sentAt = nowMs();
    const extended = await this.#inner.extend(request);
    // A handed-over lease is a short claim that the lock extends: the lease now runs from here.
    if (extended) {
      this.lastSentAt = sentAt;
      this.lastGrantTtlMs = request.ttlMs;
    }
    return extended;
  }

  release(request: ReleaseRequest): Promise<boolean> {
    this.#lastRequests.delete(request.token);
    return this.#inner.release(request);
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }

  /** Notes a grant's lease as starting when its request left, at `sentAt`. */
  async #timed(
    reply: Promise<AcquireResult>,
    token: string,
    sentAt: number,
  ): Promise<AcquireResult> {
    const result = await reply;
    if (result.ok) {
      this.#lastRequests.delete(token);
      this.lastSentAt = sentAt;
      this.lastGrantTtlMs = result.ttlMs;
    }
    return result;
  }
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
      let stallLeaseEnd = leaseEnd;
      if (order.leaseMs !== undefined) {
        // A lost lease stays lost: the trial then finds its release returned false.
        const lengthened = await lock.extend(order.leaseMs).then(
          () => true,
          () => false,
        );
        if (lengthened) stallLeaseEnd = backend.lastSentAt + backend.lastGrantTtlMs;
      }
      await stall(order, lock, read.value, stallLeaseEnd);
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
