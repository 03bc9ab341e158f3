import type { AcquireTraceContext, LockEventBase } from '@deadbolt/core';
import type { Attributes, Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';
import {
  ATTR_ACQUIRE_OUTCOME,
  ATTR_ERROR_TYPE,
  ATTR_HOLD_OUTCOME,
  ATTR_KEY,
  ATTR_OWNER,
  acquireOutcome,
  errorType,
  type HoldOutcome,
} from './attributes.js';
import type { LockTelemetry } from './telemetry.js';

/**
 * Whether and how a lock's key or owner labels metrics: `false` leaves it out, `true` puts it in
 * as it is, and a function maps it to a label (`undefined` leaves it out). Every distinct label
 * value is a time series of its own in the metrics backend, for as long as the process runs.
 */
export type MetricLabel = boolean | ((value: string) => string | undefined);

/** Which lock fields label the metrics (`deadbolt.lock.key`, `deadbolt.lock.owner`). */
export interface MetricAttributeOptions {
  /**
   * The key as a label. Off, because keys are unbounded (`invoice:81723`); map a key to a few
   * groups instead, as in `(key) => key.split(':')[0]`, or pass `true` for a fixed, small set.
   *
   * @default false
   */
  key?: MetricLabel;
  /**
   * The owner as a label: tells managers apart. Bounded when each manager is given its own
   * `owner` (a role: `'scheduler'`); the default owner, `hostname:pid`, is a new series in every
   * process, so map it (`(owner) => owner.split(':')[0]`) or turn it off when the resource
   * attributes already name the process.
   *
   * @default true
   */
  owner?: MetricLabel;
}

/**
 * Bucket bounds in seconds for both durations, from 1 ms to 5 min: OpenTelemetry's default
 * bounds (0 to 10 000) are meant for milliseconds and would put every wait in the first two.
 */
const DURATION_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/** A lock being held, as the metrics count it. */
interface Holding {
  attributes: Attributes;
  since: number;
}

/** The instruments, fed by the channels. */
export class LockMetrics implements LockTelemetry {
  readonly #waitDuration: Histogram;
  readonly #holdDuration: Histogram;
  readonly #held: UpDownCounter;
  readonly #timeouts: Counter;
  readonly #losses: Counter;
  readonly #handoffs: Counter;
  readonly #extendFailures: Counter;
  readonly #releaseFailures: Counter;
  readonly #key: MetricLabel;
  readonly #owner: MetricLabel;
  readonly #callStarts = new WeakMap<AcquireTraceContext, number>();
  /** Holds counted in `deadbolt.lock.held`, by acquisition `id`. */
  readonly #holding = new Map<number, Holding>();

  constructor(meter: Meter, labels: MetricAttributeOptions = {}) {
    this.#key = labels.key ?? false;
    this.#owner = labels.owner ?? true;
    const advice = { explicitBucketBoundaries: DURATION_BUCKETS };
    this.#waitDuration = meter.createHistogram('deadbolt.lock.wait.duration', {
      description: 'Time from an acquisition call to its outcome (a grant, a refusal, a timeout…).',
      unit: 's',
      advice,
    });
    this.#holdDuration = meter.createHistogram('deadbolt.lock.hold.duration', {
      description: 'Time from a grant to the release or loss of the lock.',
      unit: 's',
      advice,
    });
    this.#held = meter.createUpDownCounter('deadbolt.lock.held', {
      description: 'Locks this process holds now (a grant counts once, whatever its weight).',
      unit: '{lock}',
    });
    this.#timeouts = meter.createCounter('deadbolt.lock.timeouts', {
      description: 'Acquisitions that gave up after their `wait` (LockTimeoutError).',
      unit: '{timeout}',
    });
    this.#losses = meter.createCounter('deadbolt.lock.losses', {
      description: 'Locks lost while held: the lease expired unconfirmed or was taken over.',
      unit: '{loss}',
    });
    this.#handoffs = meter.createCounter('deadbolt.lock.handoffs', {
      description: 'Grants handed to a queued waiter by a release, without a request.',
      unit: '{handoff}',
    });
    this.#extendFailures = meter.createCounter('deadbolt.lock.extend_failures', {
      description: 'Extensions that failed for a reason other than a lost lease.',
      unit: '{failure}',
    });
    this.#releaseFailures = meter.createCounter('deadbolt.lock.release_failures', {
      description: 'Releases that failed (the lease then ends by its TTL).',
      unit: '{failure}',
    });
  }

  callStarted(call: AcquireTraceContext): void {
    this.#callStarts.set(call, performance.now());
  }

  callEnded(call: AcquireTraceContext): void {
    const startedAt = this.#callStarts.get(call);
    if (startedAt === undefined) return;
    this.#waitDuration.record(secondsSince(startedAt), {
      ...this.#labels(call),
      [ATTR_ACQUIRE_OUTCOME]: acquireOutcome(call),
    });
  }

  readonly events: LockTelemetry['events'] = {
    acquired: (event) => {
      const attributes = this.#labels(event);
      this.#held.add(1, attributes);
      this.#holding.set(event.id, { attributes, since: performance.now() });
      if (event.handedOff) this.#handoffs.add(1, attributes);
    },
    released: (event) => this.#endHold(event.id, event.released ? 'released' : 'not_held'),
    lost: (event) => {
      this.#losses.add(1, this.#labels(event));
      this.#endHold(event.id, 'lost');
    },
    'timed-out': (event) => this.#timeouts.add(1, this.#labels(event)),
    extended: () => {
      // Routine; the hold span has an event for each.
    },
    'extend-failed': (event) => {
      this.#extendFailures.add(1, {
        ...this.#labels(event),
        [ATTR_ERROR_TYPE]: errorType(event.error),
      });
    },
    'release-failed': (event) => {
      this.#releaseFailures.add(1, {
        ...this.#labels(event),
        [ATTR_ERROR_TYPE]: errorType(event.error),
      });
      if (event.during === 'release') this.#endHold(event.id, 'release_failed');
    },
  };

  stop(): void {
    // The instruments stay registered with the meter: leave `held` at what is still counted
    // from here, none, rather than at a number nothing will bring down.
    for (const { attributes } of this.#holding.values()) this.#held.add(-1, attributes);
    this.#holding.clear();
  }

  /**
   * Ends a hold counted since its grant. Holds granted before the instrumentation began are not
   * counted, so that `held` never goes below zero.
   */
  #endHold(id: number, outcome: HoldOutcome): void {
    const holding = this.#holding.get(id);
    if (holding === undefined) return;
    this.#holding.delete(id);
    this.#held.add(-1, holding.attributes);
    this.#holdDuration.record(secondsSince(holding.since), {
      ...holding.attributes,
      [ATTR_HOLD_OUTCOME]: outcome,
    });
  }

  #labels(about: Pick<LockEventBase, 'key' | 'owner'>): Attributes {
    const attributes: Attributes = {};
    const key = label(this.#key, about.key);
    if (key !== undefined) attributes[ATTR_KEY] = key;
    const owner = label(this.#owner, about.owner);
    if (owner !== undefined) attributes[ATTR_OWNER] = owner;
    return attributes;
  }
}

function label(choice: MetricLabel, value: string): string | undefined {
  if (typeof choice === 'function') return choice(value);
  return choice ? value : undefined;
}

function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1_000;
}
