/** @module @deadbolt/testing: the backend conformance suite and a harness for real redis-server processes. */
// conformance exports (explicit names from ./conformance/index.js) go here

// harness exports (explicit names from ./harness/index.js) go here
