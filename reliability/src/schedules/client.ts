/**
 * A client process of the schedule checker. Its clients (LockManagers, each on its own
 * connection) draw operations from their seeds and run them on the schedule's one lock; the
 * process blocks its own event loop when its plan says so. It reports every belief of holding
 * to the parent for the timeline (invariant (a)), and checks each grant and extension against
 * what the backend holds (invariant (b)) and each refused attempt of a paused waiter against the
 * queue.
 */
import { DeadboltError, type Lock, whenAborted } from '@deadbolt/core';
import { nowMs } from '../clock.js';
import { judgeLeases } from './lease-check.js';
import { describeOrigin } from './observed-backend.js';
import {
  drawBlocks,
  drawOperation,
  LOCK_KEY,
  type Operation,
  permitsOf,
  type SchedulePlan,
} from './plan.js';
import type { FromClient, Tally, ToClient, ViolationReport } from './protocol.js';
import { checkPausedWaiter } from './queue-check.js';
import { deriveSeed, Random } from './random.js';
import { type Client, openWorld, type World } from './worlds.js';

/** The reason of the signal that ends the schedule: every wait stops. */
const STOPPED = new Error('the schedule is over');
/** The reason of an operation's own AbortSignal, one of the faults. */
const ABORTED = new Error('aborted by the schedule');
const stop = new AbortController();
/** Until when (monotonic ms) holders keep their locks, extending them, at the parent's word. */
let keepHoldingUntil = 0;
/** How long the next grant is to be kept, when the parent asked while nothing was held. */
let keepNextGrantForMs: number | undefined;
/** Locks this process's clients hold now. */
let holding = 0;

/** Starts keeping what is held for `forMs`, and tells the parent. */
function keepHolding(forMs: number): void {
  keepHoldingUntil = nowMs() + forMs;
  keepNextGrantForMs = undefined;
  send({ type: 'keeping' });
}

const tallies = { operations: {} as Tally, faults: {} as Tally, checks: {} as Tally };
function count(tally: Tally, what: string): void {
  tally[what] = (tally[what] ?? 0) + 1;
}

function send(message: FromClient): void {
  if (process.connected) process.send?.(message);
}

function flushTallies(): void {
  send({ type: 'counts', ...tallies });
  tallies.operations = {};
  tallies.faults = {};
  tallies.checks = {};
}

function report(violation: ViolationReport): void {
  send({ type: 'violation', violation });
}

/**
 * `epochMs` (a `Date.now()` instant such as `lock.expiresAt`) on the monotonic clock. Date.now()
 * drops the fraction of its millisecond, so the offset between the clocks is known to within
 * 1 ms; a millisecond less puts the instant at or before the true one, never after it.
 */
function toMonotonic(epochMs: number): number {
  return epochMs - Date.now() + nowMs() - 1;
}

/** Resolves after `ms`, or at once when the schedule ends. */
function pause(ms: number): Promise<void> {
  if (ms <= 0 || stop.signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const unsubscribe = whenAborted(stop.signal, done);
  });
}

/**
 * Blocks the event loop for `ms`, as a long synchronous section would: no timer, socket or
 * promise of this process runs meanwhile. Atomics.wait sleeps instead of spinning, so the block
 * takes no CPU from the other processes of this 2-core machine.
 */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface Context {
  plan: SchedulePlan;
  process: number;
  world: World;
  nextLock: number;
}

/** Starts the call `operation` asks for; null from a `tryAcquire` that was refused. */
function call(client: Client, plan: SchedulePlan, operation: Operation, signal: AbortSignal) {
  const { locks } = client;
  const once = { ttl: plan.ttlMs, signal, autoExtend: operation.autoExtend };
  const waiting = { ...once, wait: plan.waitMs, fair: operation.fair };
  const weight = operation.weight;
  switch (plan.primitive) {
    case 'mutex':
      return operation.kind === 'try'
        ? locks.tryAcquire(LOCK_KEY, once)
        : locks.acquire(LOCK_KEY, waiting);
    case 'semaphore': {
      const semaphore = locks.semaphore(LOCK_KEY, { limit: plan.limit });
      return operation.kind === 'try'
        ? semaphore.tryAcquire({ ...once, weight })
        : semaphore.acquire({ ...waiting, weight });
    }
    case 'read-write': {
      const side = locks.readWriteLock(LOCK_KEY)[operation.writer ? 'write' : 'read'];
      return operation.kind === 'try' ? side.tryAcquire(once) : side.acquire(waiting);
    }
  }
}

/** What a failed call's error counts as; a failure of the checker or library is also reported. */
function outcomeOf(error: unknown, context: Context, client: number, calledAt: number): string {
  if (error === STOPPED) return 'stopped';
  if (error === ABORTED) return 'aborted';
  if (error instanceof DeadboltError) return error.code;
  report({
    kind: 'client-failure',
    text: `process ${context.process} client ${client}: a call threw ${String((error as Error)?.stack ?? error)}`,
    from: calledAt,
    to: nowMs(),
  });
  return 'unexpected';
}

/**
 * Invariant (b), right after a grant or an extension: the client's `expiresAt` is no later
 * than the lease the backend holds for its token, and no further ahead than the TTL.
 */
async function checkLease(
  context: Context,
  client: number,
  lock: Lock,
  when: string,
  calledAt: number,
): Promise<void> {
  const { plan, world } = context;
  const expiresAt = lock.expiresAt;
  const checkedAt = Date.now();
  if (!lock.held) {
    count(tallies.checks, 'lease:not-held');
    return;
  }
  const who = () =>
    `process ${context.process} client ${client} holds fence ${lock.fence} with token …${lock.token.slice(-8)} ` +
    `(${describeOrigin(world.clients[client]?.observed.originOf(lock.token))})`;
  if (expiresAt - checkedAt > plan.ttlMs) {
    report({
      kind: 'lease-beyond-ttl',
      text: `${who()}: ${when}, its expiresAt is ${expiresAt - checkedAt} ms ahead, more than the TTL of ${plan.ttlMs} ms`,
      from: calledAt,
      to: nowMs(),
    });
  }
  const { servers, described } = await world.leases.read(LOCK_KEY, lock.token);
  const repliedAt = Date.now();
  const verdict = judgeLeases(expiresAt, servers, repliedAt, world.leases.majority);
  count(tallies.checks, `lease:${verdict}`);
  if (verdict === 'ok' || verdict === 'undetermined') return;
  report({
    kind: verdict,
    text: `${who()}: ${when}, it believes its lease ends in ${expiresAt - checkedAt} ms; ${described} (read ${repliedAt - checkedAt} ms after)`,
    from: calledAt,
    to: nowMs(),
  });
}

async function runOperation(
  context: Context,
  client: Client,
  clientIndex: number,
  operation: Operation,
): Promise<void> {
  const { plan } = context;
  const calledAt = nowMs();
  const abort = new AbortController();
  let abortTimer: NodeJS.Timeout | undefined;
  if (operation.abortAfterMs !== undefined) {
    abortTimer = setTimeout(() => {
      count(tallies.faults, 'abort-during-wait');
      abort.abort(ABORTED);
    }, operation.abortAfterMs);
  }
  let lock: Lock | null;
  try {
    lock = await call(client, plan, operation, AbortSignal.any([stop.signal, abort.signal]));
  } catch (error) {
    count(
      tallies.operations,
      `${operation.kind}:${outcomeOf(error, context, clientIndex, calledAt)}`,
    );
    return;
  } finally {
    clearTimeout(abortTimer);
  }
  if (lock === null) {
    count(tallies.operations, `${operation.kind}:refused`);
    return;
  }
  count(tallies.operations, `${operation.kind}:granted`);
  holding += 1;
  try {
    await hold(context, client, clientIndex, operation, lock, calledAt);
  } finally {
    holding -= 1;
  }
}

/** From a grant to its release: reports the belief, checks the lease, holds as drawn, releases. */
async function hold(
  context: Context,
  client: Client,
  clientIndex: number,
  operation: Operation,
  lock: Lock,
  calledAt: number,
): Promise<void> {
  const { plan } = context;
  const id = context.nextLock++;
  let lostAt = lock.signal.aborted ? nowMs() : undefined;
  lock.signal.addEventListener('abort', () => {
    lostAt ??= nowMs();
  });
  const origin = client.observed.originOf(lock.token);
  send({
    type: 'held',
    lock: id,
    client: clientIndex,
    weight: permitsOf(plan, operation),
    fence: lock.fence,
    how: `${operation.kind} (${origin?.kind ?? 'unseen'})`,
    calledAt,
    from: nowMs(),
    until: toMonotonic(lock.expiresAt),
  });
  await checkLease(context, clientIndex, lock, 'right after its grant', calledAt);
  if (keepNextGrantForMs !== undefined) keepHolding(keepNextGrantForMs);

  const heldFrom = Date.now();
  const holdUntil = () =>
    operation.holdMs === undefined
      ? lock.expiresAt + operation.boundaryOffsetMs
      : heldFrom + operation.holdMs;
  if (operation.holdMs === undefined) count(tallies.faults, 'hold-to-lease-end');
  if (operation.extendAt !== undefined) {
    await pause((holdUntil() - heldFrom) * operation.extendAt);
    if (!stop.signal.aborted) await extend(context, clientIndex, lock, id, calledAt);
  }
  // The hold as drawn, cut short when the parent asks for the lock to be kept (extended).
  while (Date.now() < holdUntil() && nowMs() >= keepHoldingUntil && !stop.signal.aborted) {
    await pause(Math.min(holdUntil() - Date.now(), plan.ttlMs / 4));
  }
  while (nowMs() < keepHoldingUntil && !stop.signal.aborted && lock.held) {
    await extend(context, clientIndex, lock, id, calledAt);
    await pause(Math.min(plan.ttlMs / 3, keepHoldingUntil - nowMs()));
  }
  // The belief ends here (release is called next) or ended earlier when the loss was seen.
  send({
    type: 'ended',
    lock: id,
    at: Math.min(nowMs(), lostAt ?? Number.POSITIVE_INFINITY),
    until: toMonotonic(lock.expiresAt),
  });
  try {
    count(tallies.operations, (await lock.release()) ? 'release:released' : 'release:false');
  } catch (error) {
    count(tallies.operations, `release:${outcomeOf(error, context, clientIndex, calledAt)}`);
  }
}

async function extend(
  context: Context,
  client: number,
  lock: Lock,
  id: number,
  calledAt: number,
): Promise<void> {
  try {
    await lock.extend();
  } catch (error) {
    count(tallies.operations, `extend:${outcomeOf(error, context, client, calledAt)}`);
    return;
  }
  count(tallies.operations, 'extend:extended');
  send({ type: 'extended', lock: id, until: toMonotonic(lock.expiresAt) });
  await checkLease(context, client, lock, 'right after extending it', calledAt);
}

async function runClient(context: Context, client: Client, index: number): Promise<void> {
  const random = new Random(deriveSeed(context.plan.seed, 2, context.process, index));
  while (!stop.signal.aborted) {
    const operation = drawOperation(random, context.plan);
    await runOperation(context, client, index, operation);
    await pause(operation.thinkMs);
  }
}

async function run(start: Extract<ToClient, { type: 'start' }>): Promise<void> {
  const { plan, servers } = start;
  const context: Context = {
    plan,
    process: start.process,
    world: await openWorld(
      plan,
      servers,
      (reader, client) => (attempt) =>
        checkPausedWaiter(
          {
            process: start.process,
            client,
            reader,
            report,
            tally: (outcome) => count(tallies.checks, outcome),
          },
          attempt,
        ),
    ),
    nextLock: 1,
  };
  send({ type: 'ready' });
  for (const block of drawBlocks(plan, start.process)) {
    setTimeout(() => {
      if (stop.signal.aborted) return;
      blockEventLoop(block.forMs);
      count(tallies.faults, block.kind);
    }, block.at).unref();
  }
  const flusher = setInterval(flushTallies, 250);
  await Promise.all(
    context.world.clients.map((client, index) => runClient(context, client, index)),
  );
  clearInterval(flusher);
  await context.world.close().catch(() => undefined);
  // Once the last message is out, every one before it is too.
  process.send?.({ type: 'counts', ...tallies } satisfies FromClient, () => process.exit(0));
}

// A parent that is gone cannot judge anything: do not outlive it.
process.on('disconnect', () => process.exit(0));
process.on('message', (message: ToClient) => {
  if (message.type === 'finish') {
    stop.abort(STOPPED);
    return;
  }
  if (message.type === 'keep-holding') {
    if (holding > 0) keepHolding(message.forMs);
    else keepNextGrantForMs = message.forMs;
    return;
  }
  run(message).catch((error: unknown) => {
    send({ type: 'fatal', message: String((error as Error)?.stack ?? error) });
    process.exit(1);
  });
});
