/**
 * The parent's side of the counter workload: it forks the workers, serves the fenced counter,
 * keeps every critical section's interval for the overlap detector, and gives fault trials the
 * handles they need (stall orders, signals, the times of grants).
 */
import { fileURLToPath } from 'node:url';
import { Children } from './children.js';
import { nowMs, sleep } from './clock.js';
import type { BackendSpec, FromWorker, StallOrder, ToWorker, WorkerSummary } from './protocol.js';
import { FencedCounter } from './store.js';

/** One critical section, on the monotonic clock. */
export interface Interval {
  worker: number;
  fence: number;
  /** When acquire resolved in the worker. */
  start: number;
  /** When the worker left the section (or was killed); undefined while inside. */
  end: number | undefined;
  /** When its lease ended at the latest: acquire request sent + granted TTL. */
  leaseEnd: number;
}

/** Two sections that overlapped, with each one's end taken no later than its lease's end. */
export interface Overlap {
  first: Interval;
  second: Interval;
  /** How long they overlapped, ms. */
  overlapMs: number;
}

export interface WorkloadOptions {
  name: string;
  backend: BackendSpec;
  key: string;
  ttlMs: number;
  waitMs: number;
  workers: number;
  log: (message: string) => void;
}

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

export class Workload {
  readonly options: WorkloadOptions;
  readonly store = new FencedCounter();
  readonly intervals: Interval[] = [];
  /** Failed acquire calls, by when and why. */
  readonly acquireErrors: { at: number; code: string }[] = [];
  readonly #open = new Map<string, Interval>();
  readonly #workers: Children<ToWorker, FromWorker>;
  readonly #summaries: WorkerSummary[] = [];
  #victimCursor = 0;

  constructor(options: WorkloadOptions) {
    this.options = options;
    this.#workers = new Children({
      module: CHILD,
      noun: 'worker',
      onMessage: (message, worker) => this.#handle(worker, message),
      onExit: (worker, at) => {
        // Its sections end with it; the detector still bounds them by their lease.
        for (const interval of this.#open.values()) {
          if (interval.worker === worker && interval.end === undefined) interval.end = at;
        }
      },
    });
  }

  /** Worker exits the run did not cause, with what they said. */
  get unexpectedExits(): string[] {
    return this.#workers.unexpectedExits;
  }

  /** Forks the workers and resolves once each has its client open. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.workers }, () => this.spawn()));
  }

  /** Forks one worker and resolves once it is ready. */
  async spawn(): Promise<number> {
    const id = this.#workers.fork();
    const ready = this.next((message, from) => from === id && message.type === 'ready', 15_000);
    this.send(id, {
      type: 'start',
      worker: id,
      backend: this.options.backend,
      key: this.options.key,
      ttlMs: this.options.ttlMs,
      waitMs: this.options.waitMs,
    });
    await ready;
    return id;
  }

  send(worker: number, message: ToWorker): void {
    this.#workers.send(worker, message);
  }

  /** Live workers, oldest first. */
  get workerIds(): number[] {
    return this.#workers.ids;
  }

  /** Another live worker each call, so every worker gets its turn as a victim. */
  pickVictim(): number {
    const ids = this.workerIds;
    const id = ids[this.#victimCursor % ids.length] as number;
    this.#victimCursor += 1;
    return id;
  }

  pid(worker: number): number {
    return this.#workers.pid(worker);
  }

  /** Sends a stall order and resolves with the worker's `stalled` report. */
  async stall(worker: number, order: StallOrder, timeoutMs: number) {
    const stalled = this.next(
      (message, from) =>
        from === worker && message.type === 'stalled' && message.trial === order.trial,
      timeoutMs,
    );
    this.send(worker, { type: 'stall', ...order });
    const message = await stalled;
    if (message.type !== 'stalled') throw new Error('unreachable');
    return { ...message, at: nowMs() };
  }

  /** SIGKILLs a worker and resolves once it is gone. */
  kill(worker: number): Promise<number> {
    return this.#workers.kill(worker);
  }

  /** Resolves with the next message that `match` accepts; rejects after `timeoutMs`. */
  next(
    match: (message: FromWorker, worker: number) => boolean,
    timeoutMs: number,
  ): Promise<FromWorker> {
    return this.#workers.next(match, timeoutMs);
  }

  /** The first grant (critical section start) after `after`, by any worker but `except`. */
  firstGrantAfter(after: number, except?: number): number | undefined {
    let first: number | undefined;
    for (const interval of this.intervals) {
      if (interval.start > after && interval.worker !== except) {
        if (first === undefined || interval.start < first) first = interval.start;
      }
    }
    return first;
  }

  /** Waits for a grant after `after` (by any worker but `except`); undefined after `timeoutMs`. */
  async waitForGrantAfter(
    after: number,
    timeoutMs: number,
    except?: number,
  ): Promise<number | undefined> {
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      const first = this.firstGrantAfter(after, except);
      if (first !== undefined) return first;
      if (nowMs() > deadline) return undefined;
      await sleep(5);
    }
  }

  grantsBetween(from: number, to: number): number {
    return this.intervals.filter((interval) => interval.start >= from && interval.start < to)
      .length;
  }

  /** Failed acquire calls in [from, to), by error code. */
  errorsBetween(from: number, to: number): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const error of this.acquireErrors) {
      if (error.at >= from && error.at < to) counts[error.code] = (counts[error.code] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * Sections that overlapped, among those that touch [from, to]. Each section counts until it
   * ended or its lease did, whichever came first: past its lease a holder no longer holds (its
   * signal says so, and the store refuses its fence), which is what the freeze trials show.
   */
  overlaps(from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): Overlap[] {
    const now = nowMs();
    const sections = this.intervals
      .filter((interval) => interval.start <= to && (interval.end ?? now) >= from)
      .sort((a, b) => a.start - b.start);
    const found: Overlap[] = [];
    let latest: { interval: Interval; until: number } | undefined;
    for (const interval of sections) {
      const until = Math.min(interval.end ?? now, interval.leaseEnd);
      if (latest !== undefined && interval.start < latest.until) {
        found.push({
          first: latest.interval,
          second: interval,
          overlapMs: Math.min(latest.until, until) - interval.start,
        });
      }
      if (latest === undefined || until > latest.until) latest = { interval, until };
    }
    return found;
  }

  /** Smallest gap between one section's (lease-bounded) end and the next start, ms. */
  closestApproach(): number {
    const sections = [...this.intervals].sort((a, b) => a.start - b.start);
    let latestEnd = Number.NEGATIVE_INFINITY;
    let closest = Number.POSITIVE_INFINITY;
    for (const interval of sections) {
      closest = Math.min(closest, interval.start - latestEnd);
      latestEnd = Math.max(latestEnd, Math.min(interval.end ?? nowMs(), interval.leaseEnd));
    }
    return closest;
  }

  /** Tells every worker to stop after its current attempt; resolves with their summed counts. */
  async finish(): Promise<WorkerSummary> {
    await this.#workers.finish({ type: 'finish' }, this.options.waitMs + 10_000);
    const total: WorkerSummary = {
      acquisitions: 0,
      acquireErrors: {},
      abandoned: 0,
      releasesFalse: 0,
      releaseErrors: 0,
    };
    for (const summary of this.#summaries) {
      total.acquisitions += summary.acquisitions;
      total.abandoned += summary.abandoned;
      total.releasesFalse += summary.releasesFalse;
      total.releaseErrors += summary.releaseErrors;
      for (const [code, count] of Object.entries(summary.acquireErrors)) {
        total.acquireErrors[code] = (total.acquireErrors[code] ?? 0) + count;
      }
    }
    return total;
  }

  /** Grants so far, as the workers reported them (killed workers' sections included). */
  get acquisitions(): number {
    return this.intervals.length;
  }

  #handle(worker: number, message: FromWorker): void {
    switch (message.type) {
      case 'read': {
        const interval: Interval = {
          worker,
          fence: message.fence,
          start: message.start,
          end: undefined,
          leaseEnd: message.leaseEnd,
        };
        this.intervals.push(interval);
        this.#open.set(`${worker}:${message.fence}`, interval);
        const { ok, value } = this.store.read(message.fence);
        this.send(worker, { type: 'read-reply', id: message.id, ok, value });
        break;
      }
      case 'write': {
        const ok = this.store.write(message.fence, message.value);
        this.send(worker, { type: 'write-reply', id: message.id, ok });
        break;
      }
      case 'stalled': {
        // A stall order may have lengthened the lease: the section is covered until its new end.
        const interval = this.#open.get(`${worker}:${message.fence}`);
        if (interval !== undefined)
          interval.leaseEnd = Math.max(interval.leaseEnd, message.leaseEnd);
        break;
      }
      case 'exit': {
        const key = `${worker}:${message.fence}`;
        const interval = this.#open.get(key);
        if (interval !== undefined) interval.end = message.end;
        this.#open.delete(key);
        break;
      }
      case 'acquire-error':
        this.acquireErrors.push({ at: message.at, code: message.code });
        break;
      case 'summary':
        this.#summaries.push(message.summary);
        break;
      case 'fatal':
        this.options.log(`worker ${worker}: ${message.message}`);
        break;
      default:
        break;
    }
  }
}
