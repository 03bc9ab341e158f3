// App code under test: reserves stock under a lock, so two requests for the last item never both
// succeed. It takes a LockManager, so production passes one over Redis and tests one in memory.

/**
 * @typedef {{ read(sku: string): Promise<number>, write(sku: string, count: number, fence: number): Promise<void> }} Stock
 */

/**
 * Takes `count` of `sku` from `stock` if that many are left.
 *
 * @param {import('@deadbolt/core').LockManager} locks
 * @param {Stock} stock
 * @param {string} sku
 * @param {number} count
 * @returns {Promise<boolean>} whether the reservation was made
 */
async function reserve(locks, stock, sku, count) {
  return locks.withLock(
    `stock:${sku}`,
    async (lock) => {
      const left = await stock.read(sku);
      if (left < count) return false;
      // The read and the write are separate calls (another service, a database): only the lock
      // keeps a second reservation from reading the same `left` in between.
      await stock.write(sku, left - count, lock.fence);
      return true;
    },
    { ttl: 5_000 },
  );
}

module.exports = { reserve };
