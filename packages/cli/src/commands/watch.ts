import type { LockInfo } from '@deadbolt/core';
import type { CommandContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { jsonLine, lockJson, lockView, printable, type WatchJson } from '../format.js';

/** Moves the cursor home and clears the screen, so each view replaces the last. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/**
 * `deadbolt watch <key>`: shows the key, then again whenever the backend announces a release of
 * it (`wakeUps`, the channel waiters listen on) and every `intervalMs` besides, since nobody
 * announces a new holder or a handoff to a waiter. Ends with exit code 0 when `signal` aborts.
 */
export async function watch(
  context: CommandContext,
  { key, intervalMs }: { key: string; intervalMs: number },
  signal: AbortSignal,
): Promise<ExitCode> {
  const { backend } = context;
  while (!signal.aborted) {
    const since = Date.now();
    show(context, key, intervalMs, await backend.inspection.inspect({ key }));
    const round = AbortSignal.any([signal, AbortSignal.timeout(intervalMs)]);
    try {
      // A backend without wake-ups is refreshed on the interval only.
      await (backend.wakeUps?.waitForRelease({ key, signal: round, since }) ??
        new Promise<void>((resolve) => round.addEventListener('abort', () => resolve())));
    } catch (error) {
      if (!round.aborted) throw error;
    }
  }
  return ExitCode.ok;
}

function show(
  { io, json }: CommandContext,
  key: string,
  intervalMs: number,
  info: LockInfo | null,
): void {
  const now = new Date();
  const lock = info === null ? null : lockJson(info);
  if (json) {
    io.stdout.write(jsonLine({ at: now.toISOString(), key, lock } satisfies WatchJson));
    return;
  }
  const terminal = io.stdout.isTTY === true;
  const heading = `${now.toTimeString().slice(0, 8)}  watching ${printable(key)}: on release and every ${intervalMs / 1_000}s${terminal ? ', Ctrl-C stops' : ''}\n\n`;
  const view = lock === null ? `key  ${printable(key)}\nnobody holds it\n` : lockView(lock);
  io.stdout.write(terminal ? `${CLEAR_SCREEN}${heading}${view}` : `${heading}${view}\n`);
}
