import type { LockManager } from '@deadbolt/core';

export interface SingletonCronOptions {
  locks: LockManager;
  /** Names the job's locks: `cron:<name>:<tick>`. */
  name: string;
  /** Ticks start at every multiple of this, on the wall clock (60 000: every minute). */
  everyMs: number;
  /** The job; it should finish within `everyMs`. */
  run: (tick: number, signal: AbortSignal) => Promise<void>;
  /** Told of every tick: whether this process ran it. */
  onTick?: (tick: number, outcome: 'ran' | 'skipped' | 'late' | 'failed', error?: unknown) => void;
}

/**
 * Runs `run` at every tick in exactly one of the processes that call this with the same name.
 * Returns a function that stops the schedule.
 */
export function singletonCron(options: SingletonCronOptions): () => void {
  const { locks, name, everyMs, run, onTick } = options;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    const next = (Math.floor(Date.now() / everyMs) + 1) * everyMs;
    timer = setTimeout(() => void fire(next / everyMs), next - Date.now());
  };

  const fire = async (tick: number) => {
    schedule();
    const tickEnd = (tick + 1) * everyMs;
    // A process whose timer fired after the tick's window (a pause, a busy event loop) leaves it
    // alone: whoever ran it may already have finished, and its lease ends by `tickEnd + everyMs`.
    if (Date.now() >= tickEnd) return onTick?.(tick, 'late');
    // One lock per tick, never released: its lease lasts until a whole period after the tick's
    // window, so a process whose timer fires late inside the window is still refused. Releasing
    // at the end of the job would let it run the tick a second time.
    const lock = await locks.tryAcquire(`cron:${name}:${tick}`, {
      ttl: tickEnd + everyMs - Date.now(),
    });
    if (lock === null) return onTick?.(tick, 'skipped');
    try {
      await run(tick, lock.signal);
      onTick?.(tick, 'ran');
    } catch (error) {
      onTick?.(tick, 'failed', error);
    }
  };

  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
