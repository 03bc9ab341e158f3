/**
 * The `limit` of every request of a read-write lock (`LockManager.readWriteLock()`): readers take
 * 1, a writer takes all. Large enough that readers never run out, small enough for every backend's
 * integer arithmetic. `quorum()` recognises read-write locks by it.
 */
export const READ_WRITE_LIMIT = 1_000_000;
