import type { Contender } from './contenders/index.js';
import type { Row, ScenarioResult } from './results.js';
import type { Metrics, RunContext, Scenario } from './scenarios/types.js';
import { figure } from './stats.js';

/**
 * Runs each scenario `repetitions` times over every contender. Repetition r starts the
 * contenders at offset r, so no contender always runs first (or last, on a warmer machine).
 */
export async function runScenarios(
  scenarios: readonly Scenario[],
  contenders: readonly Contender[],
  context: RunContext,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) {
    const runs = new Map<string, Metrics[]>();
    const skipped = new Map<string, string>();
    await scenario.setup?.(context);
    try {
      for (let repetition = 0; repetition < context.config.repetitions; repetition++) {
        const shift = repetition % contenders.length;
        const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
        const started = Date.now();
        const outcomes = await scenario.repetition(order, context, repetition);
        for (const [id, outcome] of outcomes) {
          if ('skipped' in outcome) skipped.set(id, outcome.skipped);
          else runs.set(id, [...(runs.get(id) ?? []), outcome.metrics]);
        }
        context.log(
          `${scenario.id}: repetition ${repetition + 1}/${context.config.repetitions} ` +
            `done in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      }
    } finally {
      await scenario.teardown?.(context);
    }
    const rows: Record<string, Row> = {};
    for (const contender of contenders) {
      const reason = skipped.get(contender.id);
      const metrics = runs.get(contender.id) ?? [];
      if (reason !== undefined) {
        rows[contender.id] = { skipped: reason };
        continue;
      }
      const figures: Record<string, ReturnType<typeof figure>> = {};
      for (const name of Object.keys(metrics[0] ?? {})) {
        figures[name] = figure(metrics.map((run) => run[name] ?? Number.NaN));
      }
      rows[contender.id] = { figures };
    }
    results.push({
      id: scenario.id,
      title: scenario.title,
      description: scenario.description,
      columns: [...scenario.columns],
      rows,
    });
  }
  return results;
}
