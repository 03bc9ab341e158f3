import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchConfig } from './config.js';
import type { ContenderRole } from './contenders/index.js';
import type { Column } from './scenarios/types.js';
import type { Figure } from './stats.js';

/** Where `pnpm bench` writes its figures. */
export const LATEST = fileURLToPath(new URL('../results/latest.json', import.meta.url));

/** One contender's row in one scenario. */
export type Row = { figures: Record<string, Figure> } | { skipped: string };

export interface ScenarioResult {
  id: string;
  title: string;
  description: string;
  columns: Column[];
  /** By contender id. */
  rows: Record<string, Row>;
}

export interface ContenderInfo {
  id: string;
  label: string;
  library: string;
  settings: string;
  role: ContenderRole;
  usesRedis: boolean;
}

/** Everything one run measured: the JSON file `checkTargets` reads. */
export interface Results {
  meta: {
    date: string;
    mode: BenchConfig['mode'];
    command: string;
    node: string;
    redis: string;
    machine: string;
    durationSec: number;
    config: BenchConfig;
  };
  contenders: ContenderInfo[];
  absent: { library: string; reason: string }[];
  scenarios: ScenarioResult[];
}

/** Writes `results` as JSON; Infinity and NaN (which JSON lacks) become the strings "Infinity" and "NaN". */
export async function writeResults(path: string, results: Results): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const text = JSON.stringify(
    results,
    (_key, value: unknown) =>
      typeof value === 'number' && !Number.isFinite(value) ? String(value) : value,
    2,
  );
  await writeFile(path, `${text}\n`);
}

/** Reads a file {@link writeResults} wrote. */
export async function readResults(path: string): Promise<Results> {
  return JSON.parse(await readFile(path, 'utf8'), (_key, value: unknown) =>
    value === 'Infinity' || value === '-Infinity' || value === 'NaN' ? Number(value) : value,
  ) as Results;
}

/** The median of `metric` for `contender` in `scenario`, or undefined when it did not run. */
export function medianOf(
  results: Results,
  scenario: string,
  contender: string,
  metric: string,
): number | undefined {
  const row = results.scenarios.find((entry) => entry.id === scenario)?.rows[contender];
  if (row === undefined || 'skipped' in row) return undefined;
  return row.figures[metric]?.median;
}

/** The largest run of `metric` for `contender` in `scenario` (for counts that must stay 0). */
export function maxOf(
  results: Results,
  scenario: string,
  contender: string,
  metric: string,
): number | undefined {
  const row = results.scenarios.find((entry) => entry.id === scenario)?.rows[contender];
  if (row === undefined || 'skipped' in row) return undefined;
  return row.figures[metric]?.max;
}
