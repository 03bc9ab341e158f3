/**
 * Seeded randomness: the same seed gives the same draws, so a schedule (its scenario, faults and
 * each client's operations) is rebuilt exactly from its seed. What the draws cannot fix is the
 * timing of processes, sockets and the scheduler, so a replay repeats the plan, not every
 * interleaving.
 */

/** A 32-bit seed for part `parts` of `seed`, so that each part draws from its own stream. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let hash = seed >>> 0;
  for (const part of parts) hash = mix32(hash ^ mix32(part + 0x9e3779b9));
  return hash >>> 0;
}

/** The finaliser of MurmurHash3: scrambles all 32 bits of `value`. */
function mix32(value: number): number {
  let x = value >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** mulberry32: small, fast, and good enough to pick scenarios and delays. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** An integer from `min` to `max`, both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Spread evenly over orders of magnitude: as many 50–100 ms draws as 500–1000 ms ones. */
  logBetween(min: number, max: number): number {
    return Math.exp(this.between(Math.log(min), Math.log(max)));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
    let draw = this.next() * total;
    for (const [choice, weight] of choices) {
      draw -= weight;
      if (draw < 0) return choice;
    }
    return (choices[choices.length - 1] as readonly [T, number])[0];
  }
}
