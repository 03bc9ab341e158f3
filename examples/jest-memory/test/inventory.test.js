// Jest in its default mode: CommonJS, no --experimental-vm-modules, no transform config. The
// deadbolt packages load through require() (their CommonJS builds).
const { LockManager } = require('@deadbolt/core');
const { MemoryBackend } = require('@deadbolt/memory');
const { reserve } = require('../src/inventory.js');

/** A store whose reads and writes each take a turn of the event loop, as a real one would. */
function slowStock(initial) {
  const counts = new Map(Object.entries(initial));
  const fences = [];
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  return {
    fences,
    async read(sku) {
      await turn();
      return counts.get(sku) ?? 0;
    },
    async write(sku, count, fence) {
      await turn();
      counts.set(sku, count);
      fences.push(fence);
    },
  };
}

test('ten concurrent reservations of the last three items: exactly three succeed', async () => {
  const locks = new LockManager({ backend: new MemoryBackend() });
  const stock = slowStock({ lamp: 3 });

  const results = await Promise.all(
    Array.from({ length: 10 }, () => reserve(locks, stock, 'lamp', 1)),
  );

  expect(results.filter(Boolean)).toHaveLength(3);
  expect(await stock.read('lamp')).toBe(0);
  // Each write came from a later holder than the one before it.
  expect(stock.fences).toEqual([...stock.fences].sort((a, b) => a - b));
});

test("with Jest's fake timers, a lease expires when the clock passes its TTL", async () => {
  jest.useFakeTimers();
  try {
    const locks = new LockManager({ backend: new MemoryBackend() });
    const lock = await locks.acquire('report', { ttl: 1_000 });
    await jest.advanceTimersByTimeAsync(1_000);
    // The lease ran out: release() reports that this holder no longer held the lock.
    expect(await lock.release()).toBe(false);
  } finally {
    jest.useRealTimers();
  }
});
