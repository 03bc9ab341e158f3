import type { Results, Row } from './results.js';
import type { Column } from './scenarios/types.js';
import type { Figure } from './stats.js';

/** A number for a table: ∞, n/a, or fixed decimals with thousands separators. */
export function formatNumber(value: number, digits: number): string {
  if (Number.isNaN(value)) return 'n/a';
  if (value === Number.POSITIVE_INFINITY) return '∞';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** `median (min–max)`, or just the median when every run agreed. */
function cell(figure: Figure | undefined, column: Column): string {
  if (figure === undefined) return 'n/a';
  const median = formatNumber(figure.median, column.digits);
  const min = formatNumber(figure.min, column.digits);
  const max = formatNumber(figure.max, column.digits);
  return min === max ? median : `${median} (${min}–${max})`;
}

function rowCells(row: Row | undefined, columns: readonly Column[]): string[] {
  if (row === undefined) return columns.map(() => 'n/a');
  if ('skipped' in row) return [`n/a: ${row.skipped}`, ...columns.slice(1).map(() => '')];
  return columns.map((column) => cell(row.figures[column.metric], column));
}

/** The markdown report: one table per scenario, medians with (min–max) over the repetitions. */
export function renderMarkdown(results: Results): string {
  const { meta } = results;
  const lines = [
    `# deadbolt benchmark (${meta.mode})`,
    '',
    `${meta.date} · \`${meta.command}\` · ${meta.machine} · Node ${meta.node} · Redis ${meta.redis} · ` +
      `${meta.config.repetitions} repetitions · ${meta.durationSec.toFixed(0)} s`,
    '',
    'Each cell: median over the repetitions (min–max).',
  ];
  for (const scenario of results.scenarios) {
    lines.push('', `## ${scenario.title}`, '', scenario.description, '');
    lines.push(`| contender | ${scenario.columns.map((column) => column.header).join(' | ')} |`);
    lines.push(`| --- | ${scenario.columns.map(() => '---:').join(' | ')} |`);
    for (const contender of results.contenders) {
      const cells = rowCells(scenario.rows[contender.id], scenario.columns);
      lines.push(`| ${contender.label} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('', '## Contenders', '');
  for (const contender of results.contenders) {
    lines.push(`- **${contender.label}**: ${contender.library}; ${contender.settings}`);
  }
  for (const { library, reason } of results.absent)
    lines.push(`- **${library}**: not run: ${reason}`);
  return `${lines.join('\n')}\n`;
}
