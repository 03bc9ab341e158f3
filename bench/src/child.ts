/**
 * A child process of scenario 3: it opens one client of the contender the parent names and runs
 * its share of the workers on the parent's schedule (times on the machine-wide monotonic clock).
 */
import { contenderById, type LockClient } from './contenders/index.js';
import { type ContentionLog, type ContentionPlan, runContention } from './scenarios/contention.js';
import {
  runSaturation,
  type SaturationPlan,
  type SaturationTally,
} from './scenarios/saturation.js';

/** Parent → child. */
export type ChildRequest =
  | { type: 'open'; contender: string; redisUrl: string; warmKey: string }
  | { type: 'run'; plan: ContentionPlan }
  | { type: 'open-saturation'; contender: string; redisUrl: string; warmKey: string }
  | { type: 'saturate'; plan: SaturationPlan }
  | { type: 'close-saturation' }
  | { type: 'close' }
  | { type: 'exit' };

/** Child → parent. */
export type ChildReply =
  | { type: 'opened' }
  | { type: 'log'; log: ContentionLog }
  | { type: 'tally'; tally: SaturationTally }
  | { type: 'closed' }
  | { type: 'error'; message: string };

let client: LockClient | undefined;
/** Scenario 6 keeps one client of every contender open, to run them in turn. */
const saturationClients = new Map<string, LockClient>();
const background: Promise<unknown>[] = [];

function reply(message: ChildReply): void {
  process.send?.(message);
}

async function handle(request: ChildRequest): Promise<void> {
  switch (request.type) {
    case 'open': {
      client = await contenderById(request.contender).open(request.redisUrl);
      await (await client.acquire(request.warmKey))();
      reply({ type: 'opened' });
      return;
    }
    case 'run': {
      if (client === undefined) throw new Error('run before open');
      const run = await runContention(client, request.plan);
      const owned = client;
      // Stragglers keep the client until they stop; the parent need not wait for them.
      background.push(run.stopped.finally(() => owned.close()).catch(() => undefined));
      reply({ type: 'log', log: run.log });
      return;
    }
    case 'open-saturation': {
      const opened = await contenderById(request.contender).open(request.redisUrl);
      await (await opened.acquire(request.warmKey))();
      saturationClients.set(request.contender, opened);
      reply({ type: 'opened' });
      return;
    }
    case 'saturate': {
      const owned = saturationClients.get(request.plan.contender);
      if (owned === undefined) throw new Error('saturate before open-saturation');
      reply({ type: 'tally', tally: await runSaturation(owned, request.plan) });
      return;
    }
    case 'close-saturation': {
      const owned = [...saturationClients.values()];
      saturationClients.clear();
      await Promise.all(owned.map((opened) => opened.close().catch(() => undefined)));
      reply({ type: 'closed' });
      return;
    }
    case 'close': {
      client = undefined;
      reply({ type: 'closed' });
      return;
    }
    case 'exit': {
      await Promise.race([
        Promise.all(background),
        new Promise((resolve) => setTimeout(resolve, 5_000)),
      ]);
      process.exit(0);
    }
  }
}

process.on('message', (message: ChildRequest) => {
  handle(message).catch((error: unknown) => {
    reply({
      type: 'error',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
  });
});
