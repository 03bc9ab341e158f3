import type {
  AcquireRequest,
  ExtendRequest,
  FenceCapability,
  HandoffCapability,
  InspectionCapability,
  LockBackend,
  QueueCapability,
  ReleaseRequest,
  WakeUpCapability,
} from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { expect, vi } from 'vitest';

/** One backend call as a {@link RecordingBackend} saw it: the operation and the fake time. */
export interface RecordedCall {
  op: 'acquire' | 'extend' | 'release' | 'waitForRelease';
  at: number;
}

/**
 * A real MemoryBackend behind a thin wrapper that records every call and lets a test make one
 * operation fail the way a backend fails when its server is unreachable or loses data. Every
 * answer it returns comes from the MemoryBackend; it never invents one.
 */
export class RecordingBackend implements LockBackend {
  readonly inner: MemoryBackend;
  readonly log: RecordedCall[] = [];
  /**
   * How `extend` misbehaves, when set:
   * - `reject`: fails like a refused connection;
   * - `hang`: never answers, like a request stuck on a dead connection;
   * - `lost`: the server forgot the lease first (a failover to a replica that never saw it), so
   *   the MemoryBackend itself answers false.
   */
  extendFault: 'reject' | 'hang' | 'lost' | undefined;
  /**
   * When set, `acquire` requests wait for this promise before reaching the MemoryBackend, like
   * requests stuck on a slow connection; they are applied once it resolves, and fail with its
   * error if it rejects.
   */
  acquireGate: Promise<void> | undefined;
  /** Milliseconds each `extend` request takes to reach the MemoryBackend, like a slow link. */
  extendDelayMs = 0;
  /**
   * Milliseconds each `release` takes to reach the MemoryBackend, so requests sent after it get
   * there first: like a release whose script the server did not have cached (`NOSCRIPT`), which
   * the client sends again once the requests behind it are on their way.
   */
  releaseDelayMs = 0;
  /** When set, `release` rejects like an unreachable server. */
  releaseFault = false;
  /** When set, `waitForRelease` rejects like a lost subscriber connection. */
  waitFault = false;

  constructor(inner = new MemoryBackend()) {
    this.inner = inner;
  }

  /** The operations called so far, in order. */
  get calls(): string[] {
    return this.log.map((call) => call.op);
  }

  /** How many times `op` was called. */
  count(op: RecordedCall['op']): number {
    return this.log.filter((call) => call.op === op).length;
  }

  async acquire(request: AcquireRequest) {
    this.#record('acquire');
    if (this.acquireGate) await this.acquireGate;
    return this.inner.acquire(request);
  }

  /** Queued attempts count as `acquire`s. */
  readonly queue: QueueCapability = {
    acquire: async (request) => {
      this.#record('acquire');
      if (this.acquireGate) await this.acquireGate;
      return this.inner.queue.acquire(request);
    },
  };

  async extend(request: ExtendRequest) {
    this.#record('extend');
    if (this.extendFault === 'reject') throw new Error('connect ECONNREFUSED');
    if (this.extendFault === 'hang') return new Promise<boolean>(() => undefined);
    if (this.extendDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.extendDelayMs));
    }
    if (this.extendFault === 'lost') {
      await this.inner.release({ key: request.key, token: request.token });
    }
    return this.inner.extend(request);
  }

  async release(request: ReleaseRequest) {
    this.#record('release');
    if (this.releaseFault) throw new Error('connect ECONNREFUSED');
    if (this.releaseDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.releaseDelayMs));
    }
    return this.inner.release(request);
  }

  readonly fences: FenceCapability = { advance: (request) => this.inner.fences.advance(request) };

  /** Waits for a release and for a grant both count as `waitForRelease`. */
  readonly wakeUps: WakeUpCapability = {
    waitForRelease: (request) => this.#waiting(() => this.inner.wakeUps.waitForRelease(request)),
  };

  readonly handoff: HandoffCapability = {
    waitForGrant: (request) => this.#waiting(() => this.inner.handoff.waitForGrant(request)),
  };

  readonly inspection: InspectionCapability = {
    inspect: (request) => this.inner.inspection.inspect(request),
  };

  #waiting<T>(wait: () => Promise<T>): Promise<T> {
    this.#record('waitForRelease');
    if (this.waitFault) return Promise.reject(new Error('subscriber lost'));
    return wait();
  }

  #record(op: RecordedCall['op']): void {
    this.log.push({ op, at: Date.now() });
  }
}

/**
 * A backend with only the three required methods (no `waitForRelease`), like a store without
 * pub/sub: waiters can only poll. It delegates to a real MemoryBackend.
 */
export function pollingOnly(inner: MemoryBackend): LockBackend {
  return {
    acquire: (request) => inner.acquire(request),
    extend: (request) => inner.extend(request),
    release: (request) => inner.release(request),
  };
}

/** Settles a promise's callbacks without moving fake time. */
export async function flush(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

/**
 * Watches a promise without handling its outcome for the test: `settled` turns true once it
 * resolves or rejects, and `at` is the fake time it did.
 */
export function watch<T>(promise: Promise<T>): {
  readonly settled: boolean;
  readonly at: number;
  readonly result: Promise<T>;
} {
  const state = { settled: false, at: Number.NaN };
  const done = () => {
    state.settled = true;
    state.at = Date.now();
  };
  promise.then(done, done);
  return {
    get settled() {
      return state.settled;
    },
    get at() {
      return state.at;
    },
    result: promise,
  };
}

/**
 * What a call that returns a promise rejected with; undefined if it resolved. A synchronous throw
 * fails the test: a caller's `.catch()` never sees such an error.
 */
export async function rejectionOf(run: () => unknown): Promise<unknown> {
  let returned: unknown;
  try {
    returned = run();
  } catch (error) {
    throw new Error(`expected a rejected promise, but the call threw at once: ${error}`);
  }
  expect(returned).toBeInstanceOf(Promise);
  try {
    await returned;
  } catch (error) {
    return error;
  }
  return undefined;
}

/** What a call that returns no promise (a constructor, `semaphore()`) threw; undefined if nothing. */
export function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}
