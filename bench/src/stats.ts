/** A figure over repetitions: the median of the runs, with their spread and the runs themselves. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** Nearest-rank percentile (`p` in 0..100) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Median of `values` (the mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle]!;
  const low = sorted[middle - 1]!;
  const high = sorted[middle]!;
  // The mean of Infinity and a finite number is Infinity, which is what a starving run means.
  return low === high ? low : (low + high) / 2;
}

/** Summarises the runs of one metric. */
export function figure(runs: readonly number[]): Figure {
  const finiteOrInfinite = runs.filter((value) => !Number.isNaN(value));
  return {
    median: median(finiteOrInfinite),
    min: finiteOrInfinite.length === 0 ? Number.NaN : Math.min(...finiteOrInfinite),
    max: finiteOrInfinite.length === 0 ? Number.NaN : Math.max(...finiteOrInfinite),
    runs: [...runs],
  };
}

/** Milliseconds between two `process.hrtime.bigint()` readings. */
export function msBetween(fromNs: bigint, toNs: bigint): number {
  return Number(toNs - fromNs) / 1e6;
}
