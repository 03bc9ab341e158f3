/** @module @deadbolt/opentelemetry: OpenTelemetry spans and metrics for deadbolt locks. */

export type { DeadboltInstrumentation, DeadboltInstrumentationOptions } from './instrument.js';
export { instrumentDeadbolt } from './instrument.js';
export type { MetricAttributeOptions, MetricLabel } from './metrics.js';
