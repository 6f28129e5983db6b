/**
 * @module model/forward
 *
 * The decoder-only transformer shared by Llama, Mistral, Qwen2 and Qwen3 over
 * one batch: pre-norm attention with RoPE and grouped-query heads, then a
 * SwiGLU MLP, on the rows of every sequence of the step at once; attention
 * and the KV cache's ops per sequence over its own pages. Every op is queued
 * on the backend; nothing here reads back or decides anything: the step plan
 * did (kvcache/stepPlanner.ts). Shapes: T rows of the batch, H hidden,
 * I intermediate, V vocab, Hq/Hkv query/KV heads, d head dim, L layers,
 * R rows whose logits are computed, n rows sampled.
 */
import type { AttentionBatch, AttentionDims, Backend, GateHandle, KvPool, RopeTable, Tensor } from "../backends/backend.js";
import type { ModelConfig } from "./config.js";
import type { ModelWeights } from "./weights.js";

/** Activations, allocated once for batches of up to maxRows rows. */
export interface Activations {
  readonly maxRows: number;
  readonly x: Tensor; //        f32 [T, H]       residual stream
  readonly xb: Tensor; //       f32 [T, H]       normed input of a sub-block
  readonly q: Tensor; //        f32 [T, Hq * d]
  readonly k: Tensor; //        f32 [T, Hkv * d]
  readonly kPre: Tensor; //     f32 [T, Hkv * d] keys before RoPE, for the write gate
  readonly v: Tensor; //        f32 [T, Hkv * d]
  readonly attn: Tensor; //     f32 [T, Hq * d]  attention output before o_proj
  readonly proj: Tensor; //     f32 [T, H]       output of o_proj / down_proj
  readonly gate: Tensor; //     f32 [T, I]
  readonly up: Tensor; //       f32 [T, I]
  readonly xLogits: Tensor; //  f32 [R, H]       rows picked for logits
  readonly logits: Tensor; //   f32 [R, V]
}

/** The step's inputs on the device (engine/stepInputs.ts writes them). */
export interface StepTensors {
  readonly ids: Tensor; //           i32 [T]
  readonly positions: Tensor; //     i32 [T]
  readonly batch: AttentionBatch; // seqs i32 [S, SEQ_FIELDS], numGlobal i32 [S, L, Hkv], tables, Quest selection
  readonly slotMapping: Tensor; //   i32 [L, Hkv, T]
  readonly copies: Tensor; //        i32 [C, 2]
  readonly tableUpdates: Tensor; //  i32 [U, 2]
  readonly boundsBefore: Tensor; //  i32 [P, 2]
  readonly boundsAfter: Tensor; //   i32 [P', 2]
  readonly gateScores: Tensor; //    f32 [L, Hkv, T]
  readonly flags: Tensor; //         u8  [L, Hkv, T]  the step's admission decisions (read back)
  readonly observations: Tensor | null; // f32 [slots, L, O, Hq * d]
  readonly snapRequests: Tensor; //  i32 [N, SNAP_FIELDS]
  readonly snapScores: Tensor; //    f32 [sum of the heads' global tokens]
  readonly logitRows: Tensor; //     i32 [R]
  readonly sampleParams: Tensor; //  f32 [n, SAMPLE_FIELDS]
  readonly sampled: Tensor; //       i32 [n]  the sampled ids (read back)
}

/** The integers of a step the ops take as arguments (from the step plan). */
export interface StepCounts {
  readonly numRows: number;
  readonly numEvictionCopies: number;
  readonly layerCopyStart: Int32Array; // [L]
  readonly layerCopyCount: Int32Array; // [L]
  readonly numTableUpdates: number;
  readonly numBoundsBefore: number;
  readonly numBoundsAfter: number;
  readonly gateRuns: readonly { readonly gate: GateHandle; readonly row0: number; readonly numRows: number }[];
  readonly usesQuest: boolean;
  readonly usesObservations: boolean;
  readonly numSnapRequests: number;
  readonly numLogitRows: number;
  readonly numSamples: number;
}

export interface ModelParts {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly rope: RopeTable;
  readonly dims: AttentionDims;
}

/** Queues one step: the forward of every row, the KV cache's updates, logits of the rows asked for, and sampling. */
export function forwardStep(b: Backend, m: ModelParts, pool: KvPool, a: Activations, s: StepTensors, n: StepCounts): void {
  const { config: c, weights: w, dims } = m;
  const T = n.numRows;
  const eps = c.rmsNormEps;
  const numHkvT = c.numKvHeads * T;

  // ---- the cache's bookkeeping from the plan: new pages in the tables, evictions' moves
  b.scatter(s.batch.tables.blockTables, s.tableUpdates, n.numTableUpdates);
  b.copySlots(pool, s.copies, 0, n.numEvictionCopies);
  b.updatePageBounds(pool, s.boundsBefore, 0, n.numBoundsBefore);

  b.embed(a.x, w.embedTokens, s.ids, T);
  // NOTE: without gate scores no layer's admission depends on the step's activations: every layer's at once
  const admitEach = n.gateRuns.length > 0;
  if (!admitEach) b.admit(s.flags, null, 0, T, 0, s.batch, dims, c.numLayers);
  for (let l = 0; l < c.numLayers; l++) {
    const lw = w.layers[l];
    // ---- attention block
    b.rmsNorm(a.xb, a.x, lw.inputNorm, T, eps);
    b.matmul(a.q, a.xb, lw.wq, lw.bq, T);
    b.matmul(a.k, a.xb, lw.wk, lw.bk, T);
    b.matmul(a.v, a.xb, lw.wv, lw.bv, T);
    if (lw.qNorm && lw.kNorm) {
      b.rmsNorm(a.q, a.q, lw.qNorm, T * c.numHeads, eps);
      b.rmsNorm(a.k, a.k, lw.kNorm, T * c.numKvHeads, eps);
    }
    if (n.gateRuns.length > 0) b.copyRows(a.kPre, a.k, T);
    b.rope(a.q, s.positions, T, c.numHeads, m.rope);
    b.rope(a.k, s.positions, T, c.numKvHeads, m.rope);
    for (const run of n.gateRuns) b.gateScores(s.gateScores, l * numHkvT, T, run.gate, l, a.kPre, a.k, run.row0, run.numRows);
    // NOTE: admission before the attention: a chunk longer than W reads its own older keys by their flags
    if (admitEach) b.admit(s.flags, s.gateScores, l * numHkvT, T, l, s.batch, dims);
    if (n.usesQuest) b.questSelect(a.q, pool, l, s.batch, dims);
    b.pagedAttention(a.attn, a.q, a.k, a.v, pool, l, s.batch, dims);
    if (n.usesObservations) b.storeObservations(s.observations!, a.q, l, s.batch, dims);
    // ---- the layer's KV: promote what leaves the window, write the new tokens to their slots (their ring flags: after the last layer)
    b.copySlots(pool, s.copies, n.layerCopyStart[l], n.layerCopyCount[l]);
    b.writeKv(pool, a.k, a.v, s.slotMapping, l * numHkvT, T);
    b.matmul(a.proj, a.attn, lw.wo, lw.bo, T);
    b.add(a.x, a.proj, T);
    // ---- MLP block
    b.rmsNorm(a.xb, a.x, lw.postAttentionNorm, T, eps);
    b.matmul(a.gate, a.xb, lw.wGate, lw.bGate, T);
    b.matmul(a.up, a.xb, lw.wUp, lw.bUp, T);
    b.siluMul(a.gate, a.gate, a.up, T);
    b.matmul(a.proj, a.gate, lw.wDown, lw.bDown, T);
    b.add(a.x, a.proj, T);
  }
  b.writeRingFlags(s.flags, T, s.batch, dims);
  b.updatePageBounds(pool, s.boundsAfter, 0, n.numBoundsAfter);
  if (n.numSnapRequests > 0) b.snapKvScores(s.snapScores, s.snapRequests, n.numSnapRequests, s.observations!, pool, s.batch.tables, dims);

  // ---- logits of the rows asked for, then sampling
  if (n.numLogitRows > 0) {
    b.gatherRows(a.xLogits, a.x, s.logitRows, n.numLogitRows);
    b.rmsNorm(a.xLogits, a.xLogits, w.finalNorm, n.numLogitRows, eps);
    b.matmul(a.logits, a.xLogits, w.lmHead, null, n.numLogitRows);
  }
  if (n.numSamples > 0) b.sample(s.sampled, a.logits, s.sampleParams, n.numSamples);
  b.submit();
}

/** Activations for batches of up to maxRows rows and maxLogitRows logits rows. */
export function createActivations(b: Backend, c: ModelConfig, maxRows: number, maxLogitRows: number): Activations {
  const { hiddenSize: H, intermediateSize: I, vocabSize: V, numHeads, numKvHeads, headDim: d } = c;
  const t = (label: string, ...shape: number[]) => b.createTensor(shape, "f32", label);
  return {
    maxRows,
    x: t("x", maxRows, H),
    xb: t("xb", maxRows, H),
    q: t("q", maxRows, numHeads * d),
    k: t("k", maxRows, numKvHeads * d),
    kPre: t("kPre", maxRows, numKvHeads * d),
    v: t("v", maxRows, numKvHeads * d),
    attn: t("attn", maxRows, numHeads * d),
    proj: t("proj", maxRows, H),
    gate: t("gate", maxRows, I),
    up: t("up", maxRows, I),
    xLogits: t("xLogits", maxLogitRows, H),
    logits: t("logits", maxLogitRows, V),
  };
}

/** Frees the activations. */
export function destroyActivations(b: Backend, a: Activations): void {
  for (const t of [a.x, a.xb, a.q, a.k, a.kPre, a.v, a.attn, a.proj, a.gate, a.up, a.xLogits, a.logits]) b.destroyTensor(t);
}
