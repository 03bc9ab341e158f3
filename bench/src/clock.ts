/**
 * Milliseconds on the system-wide monotonic clock (`CLOCK_MONOTONIC`, which `process.hrtime`
 * reads on Linux and macOS): one timeline for every process on the machine, so intervals
 * recorded in different processes can be compared directly.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Resolves at `atMs` on the {@link nowMs} clock (at once if that has passed). */
export function sleepUntil(atMs: number): Promise<void> {
  const delay = atMs - nowMs();
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, delay)));
}
