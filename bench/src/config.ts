/** How long and how often each scenario runs. */
export interface BenchConfig {
  mode: 'full' | 'quick';
  /** Repetitions of every scenario; each figure is the median over them. */
  repetitions: number;
  uncontended: {
    /** Rounds per repetition: each round runs every contender for one slice, in rotating order. */
    rounds: number;
    sliceMs: number;
    /** Pairs per contender before measuring (connections, script loading, JIT). */
    warmupPairs: number;
  };
  contended: { workers: number; warmupMs: number; windowMs: number; drainMs: number };
  multiprocess: {
    processes: number;
    workersPerProcess: number;
    warmupMs: number;
    windowMs: number;
    drainMs: number;
  };
  /** Scenario 6: processes × loops acquire/release on distinct keys, all at once. */
  saturation: {
    processes: number;
    loops: number;
    /** Windows per contender per repetition, contenders in turn. */
    rounds: number;
    warmupMs: number;
    windowMs: number;
  };
  handoff: {
    samples: number;
    /** The holder releases after a random pause in this range, so pollers are caught at any phase. */
    holdMinMs: number;
    holdMaxMs: number;
    pings: number;
  };
  cost: {
    workers: number;
    warmupMs: number;
    windowMs: number;
    drainMs: number;
    waiters: number;
    /** How long the waiters wait before the connections are counted. */
    waitersSettleMs: number;
    waitersDrainMs: number;
    heldLocks: number;
  };
}

export const FULL: BenchConfig = {
  mode: 'full',
  repetitions: 3,
  uncontended: { rounds: 6, sliceMs: 150, warmupPairs: 50 },
  contended: { workers: 16, warmupMs: 500, windowMs: 3_000, drainMs: 1_500 },
  multiprocess: {
    processes: 4,
    workersPerProcess: 4,
    warmupMs: 500,
    windowMs: 3_000,
    drainMs: 1_500,
  },
  saturation: { processes: 4, loops: 64, rounds: 4, warmupMs: 300, windowMs: 1_000 },
  handoff: { samples: 20, holdMinMs: 20, holdMaxMs: 50, pings: 200 },
  cost: {
    workers: 16,
    warmupMs: 300,
    windowMs: 1_500,
    drainMs: 1_000,
    waiters: 100,
    waitersSettleMs: 300,
    waitersDrainMs: 2_000,
    heldLocks: 10_000,
  },
};

/** Every contender and scenario, briefly: a smoke test that the benchmark still runs. */
export const QUICK: BenchConfig = {
  mode: 'quick',
  repetitions: 2,
  uncontended: { rounds: 2, sliceMs: 40, warmupPairs: 10 },
  contended: { workers: 16, warmupMs: 50, windowMs: 250, drainMs: 200 },
  multiprocess: {
    processes: 4,
    workersPerProcess: 4,
    warmupMs: 50,
    windowMs: 250,
    drainMs: 200,
  },
  saturation: { processes: 4, loops: 64, rounds: 1, warmupMs: 100, windowMs: 300 },
  handoff: { samples: 3, holdMinMs: 5, holdMaxMs: 15, pings: 30 },
  cost: {
    workers: 16,
    warmupMs: 50,
    windowMs: 200,
    drainMs: 200,
    waiters: 100,
    waitersSettleMs: 100,
    waitersDrainMs: 300,
    heldLocks: 500,
  },
};
