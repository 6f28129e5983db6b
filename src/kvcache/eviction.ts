/**
 * @module kvcache/eviction
 *
 * Eviction: when a head's global cache exceeds a token budget, which stored
 * entries are dropped? "none", or SnapKV-style: the device scores each
 * global entry by the attention the last window of queries pays it (softmax
 * over everything they see, max over the KV head's query group; backends'
 * snapKvScores); the host smooths the scores with a max-pool over
 * neighbouring positions and keeps the best `budget` entries.
 */
import { InvalidInputError } from "../errors.js";

export interface EvictionPolicy {
  readonly name: string;
  readonly kind: "none" | "snapkv";
  /** Observation queries kept per layer for scoring (0: the policy needs none). */
  readonly observationWindow: number;
  /** True when a head holding `numGlobal` global tokens must be trimmed now. */
  shouldEvict(numGlobal: number): boolean;
  /** Indices (into the head's global list) to drop, given each entry's score and position. */
  chooseDrops(scores: ArrayLike<number>, positions: ArrayLike<number>): number[];
}

export const noEviction: EvictionPolicy = Object.freeze({
  name: "none",
  kind: "none" as const,
  observationWindow: 0,
  shouldEvict: () => false,
  chooseDrops: () => [],
});

/** Observation queries SnapKV scores with. */
export const SNAPKV_OBSERVATION_WINDOW = 16;

export class SnapKvEviction implements EvictionPolicy {
  readonly name: string;
  readonly kind = "snapkv" as const;
  readonly observationWindow = SNAPKV_OBSERVATION_WINDOW;
  readonly budget: number;
  /** NOTE: trimming in batches of a page amortizes scoring over 16 decode steps. */
  readonly slack = 16;
  readonly #poolKernel: number;

  constructor(budgetTokens: number, options: { poolKernel?: number } = {}) {
    if (!Number.isInteger(budgetTokens) || budgetTokens <= 0) throw new InvalidInputError(`eviction snapkv budget must be a positive integer, got ${budgetTokens}`);
    this.name = `snapkv:${budgetTokens}`;
    this.budget = budgetTokens;
    this.#poolKernel = options.poolKernel ?? 7;
  }

  shouldEvict(numGlobal: number): boolean {
    return numGlobal > this.budget + this.slack;
  }

  chooseDrops(scores: ArrayLike<number>, positions: ArrayLike<number>): number[] {
    const numGlobal = positions.length;
    if (numGlobal <= this.budget) return [];
    // smooth over neighbouring positions so clusters around an important token survive together
    const order = Array.from({ length: numGlobal }, (_, i) => i).sort((a, b) => positions[a] - positions[b]);
    const pooled = new Float64Array(numGlobal);
    const half = this.#poolKernel >> 1;
    for (let n = 0; n < numGlobal; n++) {
      let best = 0;
      for (let m = Math.max(0, n - half); m <= Math.min(numGlobal - 1, n + half); m++) best = Math.max(best, scores[order[m]]);
      pooled[order[n]] = best;
    }
    const ranked = Array.from({ length: numGlobal }, (_, i) => i).sort((a, b) => pooled[b] - pooled[a] || positions[a] - positions[b]);
    return ranked.slice(this.budget).sort((a, b) => a - b);
  }
}
