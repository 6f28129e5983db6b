/**
 * @module kvcache/stepPlan
 *
 * What the step planner (stepPlanner.ts) takes and gives: a sequence's part
 * of a step as the scheduler hands it over, and the plan — flat arrays the
 * model runner uploads once, plus where each sequence's results will be.
 */
import type { GateHandle } from "../backends/backend.js";
import type { KvPolicy } from "./kvPolicy.js";
import type { SequenceCache } from "./sequenceCache.js";

/** How a sampled row picks its token (stepLayout.ts SAMPLE_*); u is the request's next uniform draw. */
export interface SampleSpec {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  /** 0 or absent keeps all. */
  readonly minP?: number;
  readonly u: number;
}

/** Global tokens of one head SnapKV dropped (decided from last step's scores). */
export interface HeadDrops {
  readonly layer: number;
  readonly head: number;
  readonly indices: readonly number[];
}

/** One sequence's part of a step, as the scheduler hands it over. */
export interface StepEntry {
  readonly cache: SequenceCache;
  readonly slot: number;
  readonly policy: KvPolicy;
  /** The token ids fed this step (at most the window, unless the policy takes long steps: kvPolicy.ts maxStepTokens). */
  readonly ids: readonly number[];
  /** Sample a token after the last row, or null. */
  readonly sample: SampleSpec | null;
  /** Return the logits of rows at positions >= this (null: none but the sampled row's, when asked). */
  readonly logitsFrom: number | null;
  /** Evictions to apply before the step. */
  readonly drops: readonly HeadDrops[];
}

/** Where an entry's results are in the step's outputs. */
export interface EntryOutputs {
  readonly rowStart: number;
  readonly numRows: number;
  readonly startPos: number;
  /** Index into the sampled ids, or -1. */
  readonly sampleIndex: number;
  /** Logits rows [first, first + count) of the step's logits belong to positions logitsPos0.. */
  readonly logitsRow0: number;
  readonly numLogitsRows: number;
  readonly logitsPos0: number;
  /** Heads SnapKV scored: (layer, head) and where the scores start in the step's snap output. */
  readonly snapHeads: readonly { readonly layer: number; readonly head: number; readonly offset: number; readonly numGlobal: number }[];
}

/** A run of rows scored by one gate. */
export interface GateRun {
  readonly gate: GateHandle;
  readonly row0: number;
  readonly numRows: number;
}

export interface StepPlan {
  readonly numRows: number;
  readonly numSeqs: number;
  readonly entries: readonly StepEntry[];
  readonly outputs: readonly EntryOutputs[];
  readonly ids: Int32Array; //            [T]
  readonly positions: Int32Array; //      [T]
  readonly seqFields: Int32Array; //      [S, SEQ_FIELDS]
  readonly numGlobal: Int32Array; //      [S, L, Hkv] global tokens attention reads (after drops, before promotions)
  readonly slotMapping: Int32Array; //    [L, Hkv, T]
  /** [C, 2] slot copies: eviction moves first, then each layer's promotions. */
  readonly copies: Int32Array;
  readonly numEvictionCopies: number;
  /** [L] first copy and count of each layer's promotions. */
  readonly layerCopyStart: Int32Array;
  readonly layerCopyCount: Int32Array;
  readonly tableUpdates: Int32Array; //   [U, 2] (index into KvTables.blockTables, page id)
  /** [P, 2] (page, keys) whose Quest bounds to recompute before the layers (after eviction moves) and after them (promotions). */
  readonly boundsBefore: Int32Array;
  readonly boundsAfter: Int32Array;
  readonly logitRows: Int32Array; //      [R] rows of the batch whose logits are computed
  readonly sampleParams: Float32Array; // [n, SAMPLE_FIELDS]
  readonly numSamples: number;
  readonly snapRequests: Int32Array; //   [N, SNAP_FIELDS]
  readonly numSnapScores: number;
  readonly gateRuns: readonly GateRun[];
  readonly usesQuest: boolean;
  /** Largest Quest page list (pages) of a head this step, for the selection buffers. */
  readonly maxQuestPages: number;
  readonly usesObservations: boolean;
}

export interface PlannerDims {
  readonly numLayers: number;
  readonly numKvHeads: number;
  /** Row stride of the device block tables. */
  readonly tableRowStride: number;
  /** Observation queries SnapKV keeps. */
  readonly observationWindow: number;
}
