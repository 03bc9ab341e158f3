import { type ChildProcess, fork } from 'node:child_process';
import type { ChildReply, ChildRequest } from '../child.js';
import { nowMs } from '../clock.js';
import { CONTENTION_COLUMNS } from './contended.js';
import {
  analyseContention,
  type ContentionLog,
  CRITICAL_SECTION_MS,
  mergeLogs,
} from './contention.js';
import type { Outcome, RunContext, Scenario } from './types.js';

const CHILD = new URL('../child.js', import.meta.url);

/** A child process; it answers requests one at a time, in order. */
export class Child {
  readonly #process: ChildProcess;
  readonly #pending: { resolve: (reply: ChildReply) => void; reject: (error: Error) => void }[] =
    [];

  constructor() {
    this.#process = fork(CHILD, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#process.on('message', (reply: ChildReply) => {
      const waiter = this.#pending.shift();
      if (reply.type === 'error') waiter?.reject(new Error(`[bench] child: ${reply.message}`));
      else waiter?.resolve(reply);
    });
    // A child that dies must fail the run, not hang it.
    this.#process.on('exit', (code, signal) => {
      const error = new Error(`[bench] child exited (${signal ?? code})`);
      for (const waiter of this.#pending.splice(0)) waiter.reject(error);
    });
  }

  request(message: ChildRequest): Promise<ChildReply> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#process.send(message);
    });
  }

  async exit(): Promise<void> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#process.once('exit', resolve));
    this.#process.send({ type: 'exit' } satisfies ChildRequest);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 6_000))]);
    if (this.#process.exitCode === null) this.#process.kill('SIGKILL');
  }
}

let children: Child[] = [];

/** Scenario 3: scenario 2 across processes, each with its own client. */
export const multiprocess: Scenario = {
  id: 'multiprocess',
  title: '3. Contended across 4 processes (4 workers each), one key, 1 ms critical section',
  description:
    `4 child processes, each with its own client and 4 workers looping acquire → hold ${CRITICAL_SECTION_MS} ms → ` +
    'release on one key, on a schedule the parent sets on the machine-wide monotonic clock. The ' +
    "overlap check merges every process's timestamps. Definitions as in scenario 2.",
  columns: CONTENTION_COLUMNS,
  async setup(context: RunContext) {
    children = Array.from({ length: context.config.multiprocess.processes }, () => new Child());
  },
  async repetition(contenders, context, repetition) {
    const { workersPerProcess, warmupMs, windowMs, drainMs } = context.config.multiprocess;
    const outcomes = new Map<string, Outcome>();
    for (const contender of contenders) {
      if (!contender.usesRedis) {
        outcomes.set(contender.id, {
          skipped:
            'not on Redis: the memory backend cannot span processes, and the PostgreSQL rows run in one',
        });
        continue;
      }
      const key = `${context.runId}:multiprocess:${contender.id}:${repetition}`;
      await Promise.all(
        children.map((child) =>
          child.request({
            type: 'open',
            contender: contender.id,
            redisUrl: context.redis.url,
            warmKey: `${key}:warm`,
          }),
        ),
      );
      const names = children.map((_, process) =>
        Array.from({ length: workersPerProcess }, (_, worker) => `p${process}w${worker}`),
      );
      // Far enough ahead that every child has the plan before it starts.
      const startAt = nowMs() + 50;
      const windowStart = startAt + warmupMs;
      const windowEnd = windowStart + windowMs;
      const replies = await Promise.all(
        children.map((child, index) =>
          child.request({
            type: 'run',
            plan: { key, workers: names[index]!, startAt, windowStart, windowEnd, drainMs },
          }),
        ),
      );
      await Promise.all(children.map((child) => child.request({ type: 'close' })));
      const logs = replies.flatMap((reply): ContentionLog[] =>
        reply.type === 'log' ? [reply.log] : [],
      );
      outcomes.set(contender.id, {
        metrics: analyseContention(mergeLogs(logs), names.flat(), windowStart, windowEnd),
      });
    }
    return outcomes;
  },
  async teardown() {
    await Promise.all(children.map((child) => child.exit()));
    children = [];
  },
};
