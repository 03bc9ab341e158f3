/**
 * A child process of scenario 3: it opens one client of the contender the parent names and runs
 * its share of the workers on the parent's schedule (times on the machine-wide monotonic clock).
 */
import { contenderById, type LockClient } from './contenders/index.js';
import { type ContentionLog, type ContentionPlan, runContention } from './scenarios/contention.js';

/** Parent → child. */
export type ChildRequest =
  | { type: 'open'; contender: string; redisUrl: string; warmKey: string }
  | { type: 'run'; plan: ContentionPlan }
  | { type: 'close' }
  | { type: 'exit' };

/** Child → parent. */
export type ChildReply =
  | { type: 'opened' }
  | { type: 'log'; log: ContentionLog }
  | { type: 'closed' }
  | { type: 'error'; message: string };

let client: LockClient | undefined;
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
