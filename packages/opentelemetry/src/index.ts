/**
 * OpenTelemetry spans and metrics for deadbolt locks.
 *
 * @module @deadbolt/opentelemetry
 */

export type { DeadboltInstrumentation, DeadboltInstrumentationOptions } from './instrument.js';
export { instrumentDeadbolt } from './instrument.js';
export type { MetricAttributeOptions, MetricLabel } from './metrics.js';
