/**
 * Runs one schedule: forks its client processes, injects its faults on time (kills, empty
 * restarts, message faults on the subscriber connections), then stops the clients and judges:
 * the timeline's overloads (invariant (a)) and what the clients reported ((b) and the queue).
 */
import { fileURLToPath } from 'node:url';
import type { FaultProxy, RedisServer } from '@deadbolt/testing';
import { Children } from '../children.js';
import { nowMs, sleep } from '../clock.js';
import { limitOf, type ScheduledFault, type SchedulePlan } from './plan.js';
import type { FromClient, Servers, Tally, ToClient, ViolationKind } from './protocol.js';
import { deriveSeed, Random } from './random.js';
import { type Amnesia, describeOverload, Timeline } from './timeline.js';

/**
 * How long a forked client process may take to load and connect. Generous: with other suites
 * beside it (a load average of 25 to 30 on two cores was seen), a fork once took over 30 s, and a
 * slow start is no finding about the library.
 */
const CHILD_READY_TIMEOUT_MS = 180_000;

/**
 * How long past its longest wait a client process may take to stop once told to: it gives up its
 * waits, releases and disconnects, a few round trips. A hang detector, not a bound: 10 s was
 * exceeded by a client starved of CPU (the checker at `nice 19` beside a CI run), and a client
 * that never stops is still reported.
 */
const CHILD_FINISH_SLACK_MS = 60_000;

/** The servers schedules run against, started once per run. */
export interface Infrastructure {
  /** Started on first use: a redis-server and the fault proxy its subscribers connect through. */
  redis(): Promise<{ server: RedisServer; proxy: FaultProxy }>;
  /** Started on first use: the quorum's members. */
  members(): Promise<RedisServer[]>;
}

export interface Violation {
  kind: ViolationKind;
  text: string;
}

export interface ScheduleResult {
  plan: SchedulePlan;
  operations: Tally;
  faults: Tally;
  checks: Tally;
  violations: Violation[];
  grants: number;
  durationMs: number;
}

const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));

function add(into: Tally, from: Tally): void {
  for (const [name, count] of Object.entries(from)) into[name] = (into[name] ?? 0) + count;
}

export async function runSchedule(
  plan: SchedulePlan,
  infrastructure: Infrastructure,
): Promise<ScheduleResult> {
  const began = nowMs();
  const servers = await serversFor(plan, infrastructure);
  const timeline = new Timeline(limitOf(plan));
  const result: ScheduleResult = {
    plan,
    operations: {},
    faults: {},
    checks: {},
    violations: [],
    grants: 0,
    durationMs: 0,
  };
  const reported: { kind: ViolationKind; text: string; from: number; to: number }[] = [];
  const amnesias: Amnesia[] = [];
  /** Client processes that are ready and have not exited: the ones faults may hit. */
  const running = new Set<number>();
  const children = new Children<ToClient, FromClient>({
    module: CLIENT,
    noun: 'client process',
    onMessage: (message, child) => {
      timeline.record(child, message);
      if (message.type === 'counts') {
        add(result.operations, message.operations);
        add(result.faults, message.faults);
        add(result.checks, message.checks);
      } else if (message.type === 'violation') {
        reported.push(message.violation);
      }
    },
    onExit: (child, at) => {
      running.delete(child);
      timeline.processDied(child, at);
    },
  });
  const start = async () => {
    const child = children.fork();
    const ready = children.next(
      (message, from) => from === child && message.type === 'ready',
      CHILD_READY_TIMEOUT_MS,
    );
    children.send(child, { type: 'start', plan, process: child, servers });
    await ready;
    running.add(child);
  };
  await Promise.all(Array.from({ length: plan.processes }, start));

  const startedAt = nowMs();
  const injections: Promise<void>[] = [];
  const timers = plan.faults.map((fault, index) =>
    setTimeout(() => {
      injections.push(
        inject(fault, index).catch((error: unknown) => {
          result.violations.push({
            kind: 'client-failure',
            text: `the checker failed to inject ${fault.kind}: ${String(error)}`,
          });
        }),
      );
    }, fault.at),
  );
  async function inject(fault: ScheduledFault, index: number): Promise<void> {
    switch (fault.kind) {
      case 'kill-holder':
      case 'kill-waiter': {
        const holding = timeline.holding();
        const candidates = [...running].filter(
          (child) => holding.has(child) === (fault.kind === 'kill-holder'),
        );
        if (candidates.length === 0) return;
        const victim = new Random(deriveSeed(plan.seed, 3, index)).pick(candidates);
        // Its beliefs end with it (the timeline hears of the exit).
        running.delete(victim);
        await children.kill(victim);
        add(result.faults, { [fault.kind]: 1 });
        await start();
        return;
      }
      case 'redis-restart': {
        const { server } = await infrastructure.redis();
        const from = nowMs();
        await server.kill();
        await sleep(fault.downMs);
        await server.restart();
        amnesias.push({ from, to: nowMs() });
        add(result.faults, { 'redis-restart-empty': 1 });
        return;
      }
      case 'member-restart': {
        const member = (await infrastructure.members())[fault.member] as RedisServer;
        await member.kill();
        await sleep(fault.downMs);
        await member.restart();
        add(result.faults, { 'quorum-member-restart-empty': 1 });
        return;
      }
      case 'pause-waiters': {
        const holding = [...timeline.holding()].filter((child) => running.has(child));
        if (holding.length === 0) return;
        const holder = new Random(deriveSeed(plan.seed, 5, index)).pick(holding);
        // Holding a little past the pause: the waiters' first attempts after it are refused.
        const keeping = children
          .next((message, from) => from === holder && message.type === 'keeping', 2_000)
          .then(
            () => true,
            () => false,
          );
        children.send(holder, { type: 'keep-holding', forMs: fault.forMs + 500 });
        if (!(await keeping)) return;
        const paused = [...running].filter((child) => child !== holder);
        const pids = paused.map((child) => children.pid(child));
        for (const pid of pids) signal(pid, 'SIGSTOP');
        await sleep(fault.forMs);
        for (const pid of pids) signal(pid, 'SIGCONT');
        add(result.faults, { 'pause-waiters': 1 });
        return;
      }
      case 'stall-process': {
        const candidates = [...running];
        if (candidates.length === 0) return;
        const pid = children.pid(new Random(deriveSeed(plan.seed, 6, index)).pick(candidates));
        signal(pid, 'SIGSTOP');
        await sleep(fault.forMs);
        signal(pid, 'SIGCONT');
        add(result.faults, { 'stall-process': 1 });
        return;
      }
      case 'messages': {
        const { proxy } = await infrastructure.redis();
        const before = proxy.messageFaults;
        const random = new Random(deriveSeed(plan.seed, 4, index));
        const { drop, duplicate, delay, delayMs } = fault;
        proxy.setMessageFaults({ drop, duplicate, delay, delayMs, random: () => random.next() });
        await sleep(fault.forMs);
        proxy.setMessageFaults(undefined);
        const after = proxy.messageFaults;
        add(result.faults, {
          'message-dropped': after.dropped - before.dropped,
          'message-duplicated': after.duplicated - before.duplicated,
          'message-delayed': after.delayed - before.delayed,
        });
        return;
      }
    }
  }

  await sleep(plan.durationMs);
  for (const timer of timers) clearTimeout(timer);
  await Promise.all(injections);
  await children.finish({ type: 'finish' }, plan.waitMs + CHILD_FINISH_SLACK_MS);

  const limit = timeline.limit;
  for (const overload of timeline.overloads(amnesias, nowMs())) {
    result.violations.push({ kind: 'overlap', text: describeOverload(overload, limit, startedAt) });
  }
  // A verdict that depends on a lease an empty restart forgot is no verdict.
  for (const violation of reported) {
    const forgotten = amnesias.some(
      (amnesia) => violation.from < amnesia.to && violation.to > amnesia.from,
    );
    if (!forgotten) result.violations.push({ kind: violation.kind, text: violation.text });
  }
  for (const exit of children.unexpectedExits) {
    result.violations.push({ kind: 'client-failure', text: exit });
  }
  result.grants = timeline.grants;
  result.durationMs = nowMs() - began;
  return result;
}

/** Sends `name` to `pid`; a process that is gone meanwhile needs nothing. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // It exited (a kill fault got it first).
  }
}

async function serversFor(plan: SchedulePlan, infrastructure: Infrastructure): Promise<Servers> {
  switch (plan.backend) {
    case 'memory':
      return { kind: 'memory' };
    case 'redis': {
      const { server, proxy } = await infrastructure.redis();
      await server.call('FLUSHALL');
      return { kind: 'redis', url: server.url, subscriberUrl: proxy.url };
    }
    case 'quorum': {
      const members = await infrastructure.members();
      await Promise.all(members.map((member) => member.call('FLUSHALL')));
      return { kind: 'quorum', urls: members.map((member) => member.url) };
    }
  }
}
