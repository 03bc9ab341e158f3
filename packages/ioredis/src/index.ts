/** @module @deadbolt/ioredis */
export {};
