/**
 * What a schedule does, drawn from its seed alone: the scenario (backend, kind of lock, TTL,
 * processes and clients), the faults the parent injects and when, and how each client draws its
 * operations. Nothing here looks at the clock, so a seed always gives the same plan.
 */
import { deriveSeed, Random } from './random.js';

export type BackendKind = 'redis' | 'memory' | 'quorum';
export type PrimitiveKind = 'mutex' | 'semaphore' | 'read-write';

/** How a schedule's clients draw their operations; every share is from 0 to 1. */
export interface OperationMix {
  /** `tryAcquire` (one attempt) instead of a waiting `acquire`. */
  tryShare: number;
  /** Waits that queue (`fair: true`, handed the lock on release); the others race. */
  fairShare: number;
  /** Waits given an AbortSignal that fires during them (or during the hold, if granted first). */
  abortShare: number;
  /** Holds that last until about the lease's end by the client's clock, a few ms either side. */
  boundaryShare: number;
  /** Holds that call `extend()` halfway. */
  extendShare: number;
  /** Holds of several seconds, kept alive by auto-extension (a long `withLock`). */
  longHoldShare: number;
  /** Grants with `autoExtend`. */
  autoExtendShare: number;
  /** Writers of a read-write lock; several permits at once on a semaphore. */
  heavyShare: number;
  /** Event-loop blocks per client process over the schedule, on average. */
  blocksPerProcess: number;
}

/** A fault the parent injects, `at` ms after the schedule started. */
export type ScheduledFault =
  /** SIGKILL a process that holds a lock now / that holds none (its clients wait); a new one replaces it. */
  | { at: number; kind: 'kill-holder' | 'kill-waiter' }
  /** SIGKILL redis-server and start it again, empty, `downMs` later. */
  | { at: number; kind: 'redis-restart'; downMs: number }
  /** The same for one quorum member, down for longer than a TTL (Redlock's delayed restart). */
  | { at: number; kind: 'member-restart'; member: number; downMs: number }
  /**
   * SIGSTOP every process but one that holds a lock for `forMs` (longer than a queue place
   * lasts), while that one keeps holding: paused waiters whose places run out meanwhile.
   */
  | { at: number; kind: 'pause-waiters'; forMs: number }
  /** SIGSTOP one process for `forMs`, a fraction of a TTL to two: a stall, as of GC or a busy host. */
  | { at: number; kind: 'stall-process'; forMs: number }
  /** Pub/sub messages to the subscriber connections dropped, duplicated or delayed for `forMs`. */
  | {
      at: number;
      kind: 'messages';
      forMs: number;
      drop: number;
      duplicate: number;
      delay: number;
      delayMs: number;
    };

export interface SchedulePlan {
  seed: number;
  backend: BackendKind;
  primitive: PrimitiveKind;
  /** Permits of the semaphore; 1 otherwise (a read-write lock's writer takes them all). */
  limit: number;
  ttlMs: number;
  waitMs: number;
  durationMs: number;
  /** Client processes at the start; each one killed is replaced. */
  processes: number;
  /** Clients (each a LockManager on its own connection) per process. */
  clientsPerProcess: number;
  mix: OperationMix;
  faults: ScheduledFault[];
}

/** Members of a quorum schedule: the fewest that survive one member down. */
export const QUORUM_MEMBERS = 3;

/** The one lock every client of a schedule contends for (servers are flushed between schedules). */
export const LOCK_KEY = 'schedule';

/**
 * What a read-write lock's writer counts for on the timeline: the whole lock, more than any
 * number of readers (weight 1 each) there could be.
 */
const WHOLE_LOCK = 1_000_000;

/** Permits that may be believed held at once. */
export function limitOf(plan: SchedulePlan): number {
  return plan.primitive === 'read-write' ? WHOLE_LOCK : plan.limit;
}

/** Permits one grant of `operation` counts for on the timeline. */
export function permitsOf(plan: SchedulePlan, operation: Operation): number {
  if (plan.primitive === 'read-write') return operation.writer ? WHOLE_LOCK : 1;
  return operation.weight;
}

/** The plan of schedule `seed`. */
export function planSchedule(seed: number): SchedulePlan {
  const random = new Random(deriveSeed(seed, 0));
  const backend = random.weighted<BackendKind>([
    ['redis', 6],
    ['memory', 2],
    ['quorum', 2],
  ]);
  const drawn = random.weighted<PrimitiveKind>([
    ['mutex', 5],
    ['semaphore', 2.5],
    ['read-write', 2.5],
  ]);
  // quorum() refuses semaphores (majorities need not share a member, so permits granted by
  // different ones add up past the limit); such a seed runs a mutex, every other draw unchanged.
  const primitive = backend === 'quorum' && drawn === 'semaphore' ? 'mutex' : drawn;
  const ttlMs = Math.round(random.logBetween(50, 1_000));
  const plannedMs = random.int(2_500, 5_000);
  const mix: OperationMix = {
    tryShare: random.pick([0, 0.1, 0.3]),
    fairShare: random.pick([1, 1, 0.5, 0]),
    abortShare: random.pick([0, 0.05, 0.2]),
    // Holds to the lease's end take a whole TTL each: a few go a long way.
    boundaryShare: random.pick([0, 0.02, 0.05]),
    extendShare: random.pick([0, 0.1, 0.3]),
    longHoldShare: random.pick([0, 0, 0.005, 0.02]),
    autoExtendShare: random.pick([0, 0.1]),
    heavyShare: random.pick([0.1, 0.3, 0.5]),
    blocksPerProcess: random.pick([0, 0.5, 1.5, 5]),
  };
  const faults = planFaults(random, backend, ttlMs, plannedMs);
  // A pause must end well before the schedule does: what the waiters do after it is the point.
  const durationMs = Math.max(
    plannedMs,
    ...faults.map((fault) => (fault.kind === 'pause-waiters' ? fault.at + fault.forMs + 1_500 : 0)),
  );
  return {
    seed,
    backend,
    primitive,
    limit: primitive === 'semaphore' ? random.int(2, 4) : 1,
    ttlMs,
    // Mostly long enough to outlast a blocked event loop or a pause, so that the waiters are
    // still waiting after it; sometimes short, so that waits time out too.
    waitMs: random.pick([500, 3_000, 6_000]),
    durationMs,
    processes: backend === 'memory' ? 1 : random.int(2, backend === 'quorum' ? 3 : 4),
    clientsPerProcess: backend === 'memory' ? random.int(3, 6) : random.int(1, 3),
    mix,
    faults,
  };
}

function planFaults(
  random: Random,
  backend: BackendKind,
  ttlMs: number,
  durationMs: number,
): ScheduledFault[] {
  // The memory backend lives in its one client process: no server, connection or process to hit.
  if (backend === 'memory') return [];
  const faults: ScheduledFault[] = [];
  const anyTime = () => Math.round(random.between(200, durationMs - 500));
  for (let kills = random.int(0, 2); kills > 0; kills--) {
    faults.push({ at: anyTime(), kind: random.pick(['kill-holder', 'kill-waiter'] as const) });
  }
  if (backend === 'redis') {
    for (let windows = random.int(0, 3); windows > 0; windows--) {
      const share = random.pick([0.2, 0.5, 1]);
      const kind = random.pick(['drop', 'duplicate', 'delay', 'mixed'] as const);
      faults.push({
        at: anyTime(),
        kind: 'messages',
        forMs: Math.round(random.between(300, 1_500)),
        drop: kind === 'drop' ? share : kind === 'mixed' ? share / 3 : 0,
        duplicate: kind === 'duplicate' ? share : kind === 'mixed' ? share / 3 : 0,
        delay: kind === 'delay' ? share : kind === 'mixed' ? share / 3 : 0,
        delayMs: Math.min(2_000, Math.round(ttlMs * random.between(0.5, 5))),
      });
    }
    if (random.chance(0.25)) {
      faults.push({ at: anyTime(), kind: 'redis-restart', downMs: random.int(50, 400) });
    }
  }
  if (backend === 'quorum' && random.chance(0.4)) {
    faults.push({
      at: anyTime(),
      kind: 'member-restart',
      member: random.int(0, QUORUM_MEMBERS - 1),
      // Redlock's delayed restart: every lease the member granted has ended by then.
      downMs: ttlMs + random.int(200, 600),
    });
  }
  if (random.chance(0.3)) {
    faults.push({ at: anyTime(), kind: 'pause-waiters', forMs: random.int(2_100, 3_000) });
  }
  for (let stalls = random.pick([0, 0, 4, 12]); stalls > 0; stalls--) {
    const forMs = Math.round(ttlMs * random.between(0.25, 2));
    faults.push({ at: anyTime(), kind: 'stall-process', forMs });
  }
  return faults.sort((a, b) => a.at - b.at);
}

/** How long an event loop stays blocked, relative to what it outlasts. */
export type BlockKind = 'block-short' | 'block-past-ttl' | 'block-past-queue-place';

/** One operation of one client. */
export interface Operation {
  /** `try`: one attempt, no waiting. */
  kind: 'acquire' | 'try';
  /** Permits taken: 1, up to the limit on a semaphore; a read-write lock's writer takes them all. */
  weight: number;
  /** A read-write lock's writer (else a reader). */
  writer: boolean;
  fair: boolean;
  autoExtend: boolean;
  /** When the operation's AbortSignal fires, ms after it starts; undefined: no signal. */
  abortAfterMs: number | undefined;
  /** How long to hold a grant, ms; undefined: until about the lease's end by the client's clock. */
  holdMs: number | undefined;
  /** For a hold to the lease's end: how far past it (negative: before), ms. */
  boundaryOffsetMs: number;
  /** When to call `extend()` during the hold, as a share of it; undefined: never. */
  extendAt: number | undefined;
  /** Pause before the next operation, ms. */
  thinkMs: number;
}

/** The next operation of a client that draws from `random`. */
export function drawOperation(random: Random, plan: SchedulePlan): Operation {
  const { mix, ttlMs, primitive, limit } = plan;
  const heavy = random.chance(mix.heavyShare);
  const boundary = random.chance(mix.boundaryShare);
  const long = random.chance(mix.longHoldShare);
  return {
    kind: random.chance(mix.tryShare) ? 'try' : 'acquire',
    weight: primitive === 'semaphore' && heavy ? random.int(2, limit) : 1,
    writer: primitive === 'read-write' && heavy,
    fair: random.chance(mix.fairShare),
    autoExtend: long || random.chance(mix.autoExtendShare),
    abortAfterMs: random.chance(mix.abortShare) ? random.between(0, ttlMs * 2) : undefined,
    // Mostly short, so that grants (and with them handoffs) come many times per TTL.
    holdMs: long
      ? random.between(2_500, 4_000)
      : boundary
        ? undefined
        : random.weighted([
            [0, 5],
            [random.between(0, 3), 4],
            [random.between(0, ttlMs / 3), 1],
          ]),
    boundaryOffsetMs: random.between(-3, 3),
    extendAt: random.chance(mix.extendShare) ? random.between(0.3, 0.7) : undefined,
    thinkMs: random.chance(0.5) ? 0 : random.between(0, ttlMs / 5),
  };
}

/** When a client process blocks its event loop, and for how long: its share of the faults. */
export function drawBlocks(
  plan: SchedulePlan,
  process: number,
): { at: number; forMs: number; kind: BlockKind }[] {
  const random = new Random(deriveSeed(plan.seed, 1, process));
  const blocks: { at: number; forMs: number; kind: BlockKind }[] = [];
  // Poisson-like: whole blocks, then one more with the fractional chance.
  const whole = Math.floor(plan.mix.blocksPerProcess);
  const count = whole + (random.chance(plan.mix.blocksPerProcess - whole) ? 1 : 0);
  for (let index = 0; index < count; index++) {
    // Short blocks are the cheap ones: a stall of a fraction of a TTL, as a GC pause or a busy
    // neighbour would cause, lands between a grant and the next request most often.
    const kind = random.weighted<BlockKind>([
      ['block-short', 2],
      ['block-past-ttl', 2],
      ['block-past-queue-place', 1],
    ]);
    const forMs =
      kind === 'block-short'
        ? plan.ttlMs * random.between(0.2, 0.6)
        : kind === 'block-past-ttl'
          ? Math.min(1_900, plan.ttlMs * random.between(1.1, 3))
          : random.between(2_100, 3_200);
    blocks.push({ at: random.between(0, plan.durationMs * 0.7), forMs: Math.round(forMs), kind });
  }
  return blocks;
}
