import { describe, expect, it } from 'vitest';
import { newToken } from '../src/manager.js';

describe('tokens', () => {
  const draws = 100_000;

  it(`are 32 lowercase hex characters, none repeated over ${draws} draws`, () => {
    const seen = new Set<string>();
    const malformed: string[] = [];
    // One assertion at the end: 100 000 expect() calls take half a minute on a loaded machine.
    for (let index = 0; index < draws; index++) {
      const token = newToken();
      if (!/^[0-9a-f]{32}$/.test(token)) malformed.push(token);
      seen.add(token);
    }
    expect(malformed).toEqual([]);
    expect(seen.size).toBe(draws);
  });

  it('have every one of their 128 bits set in about half of the draws', () => {
    const ones = new Array<number>(128).fill(0);
    for (let index = 0; index < draws; index++) {
      const bytes = Buffer.from(newToken(), 'hex');
      for (let bit = 0; bit < 128; bit++) {
        if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) ones[bit]! += 1;
      }
    }
    // Binomial(100 000, 1/2): standard deviation 158. Six of them on either side is never missed
    // by a uniform source (p < 1e-8 over all 128 bits); a counter, a clock or a stuck bit fails.
    const sigma = Math.sqrt(draws / 4);
    const skewed = ones.filter((count) => Math.abs(count - draws / 2) >= 6 * sigma);
    expect(skewed).toEqual([]);
  });
});
