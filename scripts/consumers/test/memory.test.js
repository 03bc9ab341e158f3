// Jest in its default mode (CommonJS, no ESM flags): the packages load through require().
const { LockManager, LockTimeoutError } = require('@deadbolt/core');
const { MemoryBackend } = require('@deadbolt/memory');

test('a second caller waits for the holder and gets a higher fence', async () => {
  const locks = new LockManager({ backend: new MemoryBackend() });
  const first = await locks.acquire('invoice:42', { ttl: 5_000 });
  await expect(locks.acquire('invoice:42', { wait: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
  await first.release();
  const second = await locks.acquire('invoice:42', { ttl: 5_000 });
  expect(second.fence).toBeGreaterThan(first.fence);
  await second.release();
});
