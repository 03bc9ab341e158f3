import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/index.js';

/**
 * A backend that kept a state per key it ever saw still took about 54 MB after 100 000 keys;
 * one that forgets them grows by under 0.2 MB. The bound leaves room for the collector's noise.
 */
const KEYS = 100_000;
const BOUND_BYTES = 5 * 1024 * 1024;

const mutex = { limit: 1, weight: 1 };

/**
 * Bytes in use on the heap once everything unreachable is collected. `gc` is there because
 * vitest.config.ts starts this package's test workers with `--expose-gc`.
 */
function heapAfterGc(): number {
  const { gc } = globalThis;
  if (gc === undefined) throw new Error('run these tests with node --expose-gc');
  gc();
  return process.memoryUsage().heapUsed;
}

// Up to 200 000 operations each: 1–3 s on an idle machine, over 30 s beside two CI runs. The
// timeout only tells a hang from slow progress; what is asserted is the heap.
describe('MemoryBackend footprint', { timeout: 180_000 }, () => {
  it(`forgets released keys: ${KEYS} acquire/release pairs on distinct keys leave the heap as it was`, async () => {
    const backend = new MemoryBackend();
    const before = heapAfterGc();
    let pairs = 0;
    for (let index = 0; index < KEYS; index++) {
      const key = `job:${index}`;
      const granted = (await backend.acquire({ key, token: 't', ttlMs: 30_000, ...mutex })).ok;
      if (granted && (await backend.release({ key, token: 't' }))) pairs++;
    }
    expect(pairs).toBe(KEYS);
    expect(heapAfterGc() - before).toBeLessThan(BOUND_BYTES);
    // Still in use (so the collector could not take it) and still working.
    expect((await backend.acquire({ key: 'job:0', token: 'u', ttlMs: 1_000, ...mutex })).ok).toBe(
      true,
    );
  });

  it(`forgets keys whose leases ran out without their being touched again: ${KEYS} of them`, async () => {
    const clock = { now: 1_000_000 };
    const backend = new MemoryBackend({ clock: () => clock.now });
    const before = heapAfterGc();
    let granted = 0;
    for (let index = 0; index < KEYS; index++) {
      const request = { key: `abandoned:${index}`, token: 't', ttlMs: 1_000, ...mutex };
      if ((await backend.acquire(request)).ok) granted++;
    }
    expect(granted).toBe(KEYS);
    clock.now += 1_000;
    // Other work goes on, on one key, for as many operations as there are abandoned keys; none
    // of those is asked about again.
    for (let index = 0; index < KEYS / 2; index++) {
      await backend.acquire({ key: 'busy', token: `t${index}`, ttlMs: 1_000, ...mutex });
      await backend.release({ key: 'busy', token: `t${index}` });
    }
    expect(heapAfterGc() - before).toBeLessThan(BOUND_BYTES);
    expect(await backend.inspection.inspect({ key: 'abandoned:0' })).toBeNull();
  });
});
