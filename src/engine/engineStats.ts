/**
 * @module engine/engineStats
 *
 * What the engine reports: a sequence's KV cache (per request) and the
 * engine's own state (for metrics and tests).
 */
import type { CacheStats } from "../kvcache/sequenceCache.js";

/** A sequence's KV cache at the end: admitted counts and bytes resident, peak and under full attention. */
export interface KvReport extends CacheStats {
  /** Tokens admitted, [layer][kvHead], over all positions. */
  readonly admittedByHead: number[][];
}

/** The engine's state, for metrics and tests. */
export interface EngineStats {
  readonly numWaiting: number;
  readonly numRunning: number;
  readonly numUsablePages: number;
  readonly numFreePages: number;
  readonly pageBytes: number;
  readonly numPreemptions: number;
  readonly numSteps: number;
  /** Of those, steps recorded while the step before them ran (engine/stepChain.ts). */
  readonly numChainedSteps: number;
  readonly numTokensGenerated: number;
}
