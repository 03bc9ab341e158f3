/** @module @deadbolt/redis-scripts */
export {};
