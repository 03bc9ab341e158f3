/**
 * Invariant (a): at no instant do clients believe they hold more permits than the limit. Every
 * belief of every process goes on one timeline (the machine-wide monotonic clock): from when the
 * grant reached the client's code to when it called release or saw the loss, and never past the
 * lease's end as the client itself computes it (`expiresAt`, which is where `held` turns false
 * at the latest). A process that dies stops believing when it dies.
 */
import type { FromClient } from './protocol.js';

/** One grant's belief of holding, as the client reported it. */
interface Belief {
  process: number;
  client: number;
  lock: number;
  weight: number;
  fence: number;
  how: string;
  calledAt: number;
  from: number;
  /** The latest end of the lease the client knows of (its `expiresAt`). */
  until: number;
  /** When the belief ended (release called, loss seen, process died); undefined while it lasts. */
  end: number | undefined;
}

/** An instant where the beliefs exceeded the limit, and who held them. */
export interface Overload {
  at: number;
  permits: number;
  /** How long the excess lasted, ms. */
  forMs: number;
  beliefs: Belief[];
}

/** A span during which a server forgot its leases (an empty restart: down to answering again). */
export interface Amnesia {
  from: number;
  to: number;
}

export class Timeline {
  readonly limit: number;
  readonly #beliefs = new Map<string, Belief>();

  constructor(limit: number) {
    this.limit = limit;
  }

  get grants(): number {
    return this.#beliefs.size;
  }

  /** Takes a client process's `held`, `extended` and `ended` messages; ignores the others. */
  record(process: number, message: FromClient): void {
    if (message.type === 'held') {
      const { lock, client, weight, fence, how, calledAt, from, until } = message;
      this.#beliefs.set(`${process}:${lock}`, {
        ...{ process, client, lock, weight, fence, how, calledAt, from, until },
        end: undefined,
      });
      return;
    }
    if (message.type !== 'extended' && message.type !== 'ended') return;
    const belief = this.#beliefs.get(`${process}:${message.lock}`);
    if (belief === undefined) return;
    belief.until = message.until;
    if (message.type === 'ended') belief.end = message.at;
  }

  /** A process died at `at`: whatever it believed ends there. */
  processDied(process: number, at: number): void {
    for (const belief of this.#beliefs.values()) {
      if (belief.process === process && belief.end === undefined) belief.end = at;
    }
  }

  /** Processes that believe they hold something now. */
  holding(): Set<number> {
    const processes = new Set<number>();
    for (const belief of this.#beliefs.values()) {
      if (belief.end === undefined) processes.add(belief.process);
    }
    return processes;
  }

  /**
   * Every instant where a new belief took the permits over the limit. A belief whose call began
   * before a server came back from an empty restart, and that still lasted when it went down,
   * counts only until it went down: the server forgot its lease, by design (see
   * docs/reliability.md), so a later grant to someone else is no violation.
   */
  overloads(amnesias: readonly Amnesia[], now: number): Overload[] {
    const spans: { belief: Belief; from: number; to: number }[] = [];
    for (const belief of this.#beliefs.values()) {
      let to = Math.min(belief.end ?? now, belief.until);
      for (const amnesia of amnesias) {
        if (belief.calledAt < amnesia.to && to > amnesia.from) to = Math.min(to, amnesia.from);
      }
      if (to > belief.from) spans.push({ belief, from: belief.from, to });
    }
    spans.sort((a, b) => a.from - b.from);
    const overloads: Overload[] = [];
    let active: typeof spans = [];
    for (const span of spans) {
      // A belief that ended exactly when another began does not overlap it.
      active = active.filter((other) => other.to > span.from);
      active.push(span);
      const permits = active.reduce((sum, each) => sum + each.belief.weight, 0);
      if (permits <= this.limit) continue;
      overloads.push({
        at: span.from,
        permits,
        forMs: Math.min(...active.map((each) => each.to)) - span.from,
        beliefs: active.map((each) => each.belief),
      });
    }
    return overloads;
  }
}

/** An overload in words, times relative to `origin` (the schedule's start). */
export function describeOverload(overload: Overload, limit: number, origin: number): string {
  const at = (time: number) => `${(time - origin).toFixed(1)} ms`;
  const beliefs = overload.beliefs.map(
    (belief) =>
      `process ${belief.process} client ${belief.client} (fence ${belief.fence}, ${belief.how}, ` +
      `weight ${belief.weight}, believed from ${at(belief.from)} to ` +
      `${at(Math.min(belief.end ?? Number.POSITIVE_INFINITY, belief.until))})`,
  );
  return (
    `${overload.permits} permits believed held at ${at(overload.at)}, limit ${limit}, ` +
    `for ${overload.forMs.toFixed(1)} ms: ${beliefs.join(' and ')}`
  );
}
