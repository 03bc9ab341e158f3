/** @module @deadbolt/testing */
export {};
