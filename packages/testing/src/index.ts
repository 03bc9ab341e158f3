/** @module @deadbolt/testing: the backend conformance suite and a harness for real redis-server processes. */
// Each area keeps its own explicit export list in its index; this file only joins them.
export * from './conformance/index.js';
export * from './harness/index.js';
