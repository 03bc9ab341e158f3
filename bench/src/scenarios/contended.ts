import { nowMs } from '../clock.js';
import { analyseContention, CRITICAL_SECTION_MS, runContention } from './contention.js';
import type { Column, Outcome, Scenario } from './types.js';

/** The columns of scenarios 2 and 3. */
export const CONTENTION_COLUMNS: readonly Column[] = [
  { metric: 'acquisitionsPerSec', header: 'acq/s', digits: 0 },
  { metric: 'ownerChangesPerSec', header: 'owner changes/s', digits: 0 },
  { metric: 'waitP50Ms', header: 'wait p50 ms', digits: 1 },
  { metric: 'waitP99Ms', header: 'wait p99 ms', digits: 1 },
  { metric: 'waitMaxMs', header: 'wait max ms', digits: 0 },
  { metric: 'fairness', header: 'fairness max/min', digits: 2 },
  { metric: 'violations', header: 'violations', digits: 0 },
  { metric: 'timeouts', header: 'timeouts', digits: 0 },
];

/** Scenario 2: 16 workers in one process share one client and fight over one key. */
export const contended: Scenario = {
  id: 'contended',
  title: '2. Contended: 16 workers in one process, one key, 1 ms critical section',
  description:
    `16 workers share one client; each loops acquire → hold ${CRITICAL_SECTION_MS} ms → release on one key. ` +
    'Owner change: a grant to another worker than the previous holder. Wait: acquire() call to grant ' +
    '(workers still waiting at the end count with what they had waited). Fairness: most/fewest grants ' +
    'per worker (∞: one got none). Violations: critical sections that overlapped, from timestamps on ' +
    'the monotonic clock. Timeouts: acquisitions the library gave up on.',
  columns: CONTENTION_COLUMNS,
  async repetition(contenders, context, repetition) {
    const { workers, warmupMs, windowMs, drainMs } = context.config.contended;
    const outcomes = new Map<string, Outcome>();
    for (const contender of contenders) {
      const client = await contender.open(context.redis.url);
      const key = `${context.runId}:contended:${contender.id}:${repetition}`;
      await (await client.acquire(`${key}:warm`))();
      const names = Array.from({ length: workers }, (_, index) => `w${index}`);
      const startAt = nowMs() + 5;
      const windowStart = startAt + warmupMs;
      const windowEnd = windowStart + windowMs;
      const { log, stopped } = await runContention(client, {
        key,
        workers: names,
        startAt,
        windowStart,
        windowEnd,
        drainMs,
      });
      context.defer(stopped.finally(() => client.close()));
      outcomes.set(contender.id, {
        metrics: analyseContention(log, names, windowStart, windowEnd),
      });
    }
    return outcomes;
  },
};
