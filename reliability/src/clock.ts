/**
 * Milliseconds on the system-wide monotonic clock (`CLOCK_MONOTONIC`, which `process.hrtime`
 * reads on Linux and macOS): one timeline for every process on the machine, so intervals that
 * different processes record can be compared directly.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
