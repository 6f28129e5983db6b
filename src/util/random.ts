/**
 * @module util/random
 *
 * The one seeded pseudo-random generator of the project (sampling draws,
 * random admission's benchmarks, test data): a SplitMix32-style mix of a
 * Weyl sequence, fast and well spread; the same seed gives the same numbers.
 */

/** Floats in [0, 1) from `seed`. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}
