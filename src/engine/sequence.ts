/**
 * @module engine/sequence
 *
 * A request as the engine runs it: its tokens (prompt, then what it
 * generates), how far the cache holds them, its KV policy and sampling
 * settings, its state in the scheduler (waiting, running, finished), and the
 * listener its results go to. A preempted sequence drops its cache and later
 * recomputes prompt + generated tokens; what it already reported is not
 * reported again.
 */
import { maxStepTokens, type KvPolicy } from "../kvcache/kvPolicy.js";
import type { KvReport } from "./engineStats.js";
import type { HeadDrops } from "../kvcache/stepPlan.js";
import type { SequenceCache } from "../kvcache/sequenceCache.js";
import { createRandom } from "../util/random.js";

export type FinishReason = "eos" | "stop" | "length" | "aborted";

export type SequenceStatus = "waiting" | "running" | "finished";

/** How a sequence samples its tokens (temperature 0 = greedy). */
export interface SamplingParams {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  /** 0 or absent keeps all. */
  readonly minP?: number;
  readonly seed: number;
}

/** What the engine tells a sequence's owner, in order. */
export interface SequenceListener {
  /** A sampled token; return "stop" to finish the sequence here (a stop string was seen). */
  onToken(id: number): "continue" | "stop";
  /** Logits [n, V] of positions pos0 .. pos0 + n - 1 (the rows `logitsFrom` asked for). */
  onLogits?(pos0: number, logits: Float32Array, n: number): void;
  /** Gate scores [Hkv, n] of one layer for positions pos0 .. (when traced). */
  onGateScores?(layer: number, pos0: number, n: number, scores: Float32Array): void;
  /** Prompt tokens in the cache after a step that read some (progress of a long prefill). */
  onPromptProgress?(numComputed: number, numPromptTokens: number): void;
  /** The sequence ended (`report`: its cache then, null if it held none); `error` when it failed. Its cache is released right after. */
  onFinish(reason: FinishReason, report: KvReport | null, error?: Error): void;
}

export interface SequenceOptions {
  readonly maxNewTokens: number;
  readonly sampling: SamplingParams;
  readonly policy: KvPolicy;
  /** Return the logits of positions >= this (prompt rows and every sampled row after). */
  readonly logitsFrom: number | null;
  /** Feed positions >= this one token per step (as decode does); null: chunks as large as the budget allows. */
  readonly singleTokenFrom: number | null;
  readonly traceGateScores: boolean;
  readonly eosTokenIds: ReadonlySet<number>;
}

let nextId = 1;

export class Sequence {
  readonly id = nextId++;
  /** Prompt, then generated tokens: everything the cache must hold before the next sample. */
  readonly tokenIds: number[];
  readonly numPromptTokens: number;
  readonly random: () => number;
  status: SequenceStatus = "waiting";
  /** Tokens the cache holds (0 after a preemption). */
  numComputed = 0;
  cache: SequenceCache | null = null;
  slot = -1;
  /** SnapKV's drops decided from the last step's scores, applied at the start of the next. */
  pendingDrops: HeadDrops[] = [];
  /** Positions below this had their logits / gate scores reported (a recompute does not report them again). */
  reportedLogitsTo = 0;
  reportedScoresTo = 0;
  abortRequested = false;
  numPreemptions = 0;
  finishReason: FinishReason | null = null;
  readonly createdAt = performance.now();
  firstTokenAt = 0;
  finishedAt = 0;

  constructor(
    promptIds: readonly number[],
    readonly options: SequenceOptions,
    readonly listener: SequenceListener,
  ) {
    this.tokenIds = [...promptIds];
    this.numPromptTokens = promptIds.length;
    this.random = createRandom(options.sampling.seed);
  }

  get numGenerated(): number {
    return this.tokenIds.length - this.numPromptTokens;
  }

  get generatedIds(): number[] {
    return this.tokenIds.slice(this.numPromptTokens);
  }

  get window(): number {
    return this.options.policy.window;
  }

  /** Most tokens one step may feed (kvPolicy.ts maxStepTokens). */
  get maxStepTokens(): number {
    return maxStepTokens(this.options.policy);
  }

  /** Tokens not yet in the cache. */
  get numUncomputed(): number {
    return this.tokenIds.length - this.numComputed;
  }

  /**
   * Positions fed one token per step: the caller's choice, else, after a
   * preemption, the generated tokens of a sequence whose policy acts at decode
   * (Quest reads decode rows differently; SnapKV evicts step by step), so that
   * recomputing them repeats exactly what decoding did.
   */
  get singleTokenFrom(): number | null {
    if (this.options.singleTokenFrom !== null) return this.options.singleTokenFrom;
    const p = this.options.policy;
    return this.numPreemptions > 0 && (p.selection.kind !== "all" || p.eviction.kind !== "none") ? this.numPromptTokens : null;
  }

  /** True when a step that brings the cache to `numComputed + numNew` tokens ends in a sample. */
  samplesAfter(numNew: number): boolean {
    return this.numComputed + numNew === this.tokenIds.length && this.numGenerated < this.options.maxNewTokens;
  }

  /** Rows of a step of `numNew` tokens whose logits are computed (the asked-for ones and the sampled one). */
  numLogitRows(numNew: number): number {
    const from = this.options.logitsFrom;
    const asked = from === null ? 0 : Math.max(0, Math.min(numNew, this.numComputed + numNew - from));
    return asked > 0 ? asked : this.samplesAfter(numNew) ? 1 : 0;
  }
}
