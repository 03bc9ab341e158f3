/** @module @deadbolt/node-redis */
export {};
