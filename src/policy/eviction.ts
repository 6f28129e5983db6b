/**
 * @module policy/eviction
 *
 * Eviction: when a head's global cache exceeds a token budget, which stored
 * entries are dropped? "none", or SnapKV-style: score each global entry by
 * the attention the last window of queries pays it (softmax over everything
 * they see, max over the KV head's query group), smooth with a max-pool over
 * neighbouring positions, and keep the best `budget` entries.
 */
import { InvalidInputError } from "../errors.js";

/** What an eviction policy sees of one KV head when deciding. */
export interface EvictionRequest {
  readonly headDim: number;
  /** Global keys f32 [numGlobal, d] and their absolute positions [numGlobal]. */
  readonly globalKeys: Float32Array;
  readonly globalPositions: ArrayLike<number>;
  /** Other keys the observation queries see (the ring), f32 [numOther, d]; they only normalize the softmax. */
  readonly otherKeys: Float32Array;
  /** Observation queries f32 [numObs, group, d]. */
  readonly queries: Float32Array;
  readonly numObs: number;
  readonly group: number;
  readonly scale: number;
}

export interface EvictionPolicy {
  readonly name: string;
  /** Queries to keep per layer for scoring (0: the policy needs none). */
  readonly observationWindow: number;
  /** True when a head holding `numGlobal` global tokens must be trimmed now. */
  shouldEvict(numGlobal: number): boolean;
  /** Indices (into the global list) to drop. */
  chooseDrops(request: EvictionRequest): number[];
}

export const noEviction: EvictionPolicy = {
  name: "none",
  observationWindow: 0,
  shouldEvict: () => false,
  chooseDrops: () => [],
};

export class SnapKvEviction implements EvictionPolicy {
  readonly name: string;
  readonly observationWindow: number;
  readonly #budget: number;
  readonly #slack: number;
  readonly #poolKernel: number;

  constructor(budgetTokens: number, options: { observationWindow?: number; poolKernel?: number } = {}) {
    if (!Number.isInteger(budgetTokens) || budgetTokens <= 0) throw new InvalidInputError(`--eviction snapkv budget must be a positive integer, got ${budgetTokens}`);
    this.name = `snapkv:${budgetTokens}`;
    this.#budget = budgetTokens;
    this.observationWindow = options.observationWindow ?? 16;
    this.#poolKernel = options.poolKernel ?? 7;
    // NOTE: trimming in batches of a page amortizes scoring over 16 decode steps.
    this.#slack = 16;
  }

  shouldEvict(numGlobal: number): boolean {
    return numGlobal > this.#budget + this.#slack;
  }

  chooseDrops(r: EvictionRequest): number[] {
    const numGlobal = r.globalPositions.length;
    if (numGlobal <= this.#budget) return [];
    const scores = attentionMass(r);
    // smooth over neighbouring positions so clusters around an important token survive together
    const order = Array.from({ length: numGlobal }, (_, i) => i).sort((a, b) => r.globalPositions[a] - r.globalPositions[b]);
    const pooled = new Float64Array(numGlobal);
    const half = this.#poolKernel >> 1;
    for (let n = 0; n < numGlobal; n++) {
      let best = 0;
      for (let m = Math.max(0, n - half); m <= Math.min(numGlobal - 1, n + half); m++) best = Math.max(best, scores[order[m]]);
      pooled[order[n]] = best;
    }
    const ranked = Array.from({ length: numGlobal }, (_, i) => i).sort((a, b) => pooled[b] - pooled[a] || r.globalPositions[a] - r.globalPositions[b]);
    return ranked.slice(this.#budget).sort((a, b) => a - b);
  }
}

/** Sum over observation queries of softmax weight on each global key; max over the query group. */
function attentionMass(r: EvictionRequest): Float64Array {
  const { headDim: d, globalKeys, otherKeys, queries, numObs, group, scale } = r;
  const numGlobal = globalKeys.length / d;
  const numOther = otherKeys.length / d;
  const result = new Float64Array(numGlobal);
  const logits = new Float64Array(numGlobal + numOther);
  for (let h = 0; h < group; h++) {
    const mass = new Float64Array(numGlobal);
    for (let o = 0; o < numObs; o++) {
      const qBase = (o * group + h) * d;
      let max = -Infinity;
      for (let n = 0; n < numGlobal + numOther; n++) {
        const keys = n < numGlobal ? globalKeys : otherKeys;
        const kBase = (n < numGlobal ? n : n - numGlobal) * d;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += queries[qBase + i] * keys[kBase + i];
        logits[n] = dot * scale;
        if (logits[n] > max) max = logits[n];
      }
      let sum = 0;
      for (let n = 0; n < numGlobal + numOther; n++) sum += logits[n] = Math.exp(logits[n] - max);
      for (let n = 0; n < numGlobal; n++) mass[n] += logits[n] / sum;
    }
    for (let n = 0; n < numGlobal; n++) if (mass[n] > result[n]) result[n] = mass[n];
  }
  return result;
}
