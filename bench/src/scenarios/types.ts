import type { RedisServer } from '@deadbolt/testing';
import type { Redis } from 'ioredis';
import type { BenchConfig } from '../config.js';
import type { Contender } from '../contenders/index.js';

/** Figures of one contender in one repetition, by metric name. */
export type Metrics = Record<string, number>;

/** One contender's outcome in one repetition: figures, or why the scenario does not apply. */
export type Outcome = { metrics: Metrics } | { skipped: string };

/** What every scenario gets. */
export interface RunContext {
  readonly config: BenchConfig;
  /** The benchmark's own server. */
  readonly redis: RedisServer;
  /** One connection of the benchmark's own for INFO, CONFIG, CLIENT LIST, KEYS, MEMORY. */
  readonly admin: Redis;
  /** Distinguishes this run's keys from any earlier run's on the same server. */
  readonly runId: string;
  /** Progress line on stderr. */
  log(message: string): void;
  /** Work still running in the background (waiters after a window closed), awaited at exit. */
  defer(stopped: Promise<unknown>): void;
  /** Waits (a few seconds at most) for everything deferred so far, before measuring the server. */
  settle(): Promise<void>;
}

/** How a column of a scenario's table is shown and judged. */
export interface Column {
  metric: string;
  header: string;
  /** Decimals shown. */
  digits: number;
}

/** One scenario: a repetition runs every contender once. */
export interface Scenario {
  readonly id: string;
  readonly title: string;
  /** One paragraph: what is measured, for the printed report. */
  readonly description: string;
  readonly columns: readonly Column[];
  /** Optional per-scenario setup (child processes), shared by all repetitions. */
  setup?(context: RunContext): Promise<void>;
  /**
   * Runs every contender once, in the given order (the runner rotates it per repetition so
   * drift on the machine hits every contender alike).
   */
  repetition(
    contenders: readonly Contender[],
    context: RunContext,
    repetition: number,
  ): Promise<Map<string, Outcome>>;
  teardown?(context: RunContext): Promise<void>;
}
