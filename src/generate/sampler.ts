/**
 * @module generate/sampler
 *
 * Picks the next token from logits: greedy, or temperature + top-k + top-p
 * sampling from a seeded generator so runs reproduce.
 */
import { InvalidInputError } from "../errors.js";

export interface SamplingOptions {
  /** 0 (default) means greedy. */
  readonly temperature?: number;
  /** Keep the k most likely tokens; 0 or absent keeps all. */
  readonly topK?: number;
  /** Keep the smallest set whose probability reaches p; 1 or absent keeps all. */
  readonly topP?: number;
  /** Seed of the random generator; the same seed gives the same tokens. */
  readonly seed?: number;
}

/** Index of the largest value (the first one on ties, as torch.argmax). */
export function argmax(values: Float32Array, offset = 0, length = values.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = values[offset + i];
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** A small, fast, seedable PRNG (SplitMix32-style); returns floats in [0, 1). */
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

export class Sampler {
  readonly #temperature: number;
  readonly #topK: number;
  readonly #topP: number;
  readonly #random: () => number;

  constructor(options: SamplingOptions = {}) {
    const { temperature = 0, topK = 0, topP = 1, seed = Date.now() } = options;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new InvalidInputError(`temperature must be a number >= 0, got ${temperature}`);
    if (!Number.isInteger(topK) || topK < 0) throw new InvalidInputError(`top-k must be an integer >= 0, got ${topK}`);
    if (!(topP > 0 && topP <= 1)) throw new InvalidInputError(`top-p must be in (0, 1], got ${topP}`);
    this.#temperature = temperature;
    this.#topK = topK;
    this.#topP = topP;
    this.#random = createRandom(seed);
  }

  get isGreedy(): boolean {
    return this.#temperature === 0;
  }

  /** Chooses a token id from logits [V]. */
  sample(logits: Float32Array): number {
    if (this.isGreedy) return argmax(logits);
    const order = candidateOrder(logits, this.#topK);
    const max = logits[order[0]];
    const probs = new Float64Array(order.length);
    let total = 0;
    for (let i = 0; i < order.length; i++) {
      probs[i] = Math.exp((logits[order[i]] - max) / this.#temperature);
      total += probs[i];
    }
    // top-p: keep the head of the sorted list until its mass reaches p (always at least one token)
    let keep = order.length;
    if (this.#topP < 1) {
      let mass = 0;
      for (let i = 0; i < order.length; i++) {
        mass += probs[i] / total;
        if (mass >= this.#topP) {
          keep = i + 1;
          break;
        }
      }
    }
    let kept = 0;
    for (let i = 0; i < keep; i++) kept += probs[i];
    let r = this.#random() * kept;
    for (let i = 0; i < keep; i++) {
      r -= probs[i];
      if (r < 0) return order[i];
    }
    return order[keep - 1];
  }
}

/** Token ids sorted by logit, descending; only the top k when k > 0. */
function candidateOrder(logits: Float32Array, topK: number): number[] {
  const ids = Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  return topK > 0 ? ids.slice(0, topK) : ids;
}
