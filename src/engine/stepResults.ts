/**
 * @module engine/stepResults
 *
 * The host's side of a step's one read, for one sequence: its new tokens'
 * admission flags committed to its cache (later plans promote by them), the
 * logits and gate scores it asked for (each position once, even across a
 * recompute after preemption), and SnapKV's drops for the next step.
 */
import type { AttentionDims } from "../backends/backend.js";
import type { EntryOutputs, StepPlan } from "../kvcache/stepPlan.js";
import type { StepResult } from "./modelRunner.js";
import type { Sequence } from "./sequence.js";

/** Applies everything of a step but its sampled token to `seq`. */
export function commitStepResults(seq: Sequence, out: EntryOutputs, plan: StepPlan, result: StepResult, dims: AttentionDims, vocabSize: number): void {
  const { numLayers: L, numKvHeads: H } = dims;
  const T = plan.numRows;
  // flags [L, H, T] of the step -> [L, H, numRows] of this sequence
  const flags = new Uint8Array(L * H * out.numRows);
  for (let lh = 0; lh < L * H; lh++) flags.set(result.flags.subarray(lh * T + out.rowStart, lh * T + out.rowStart + out.numRows), lh * out.numRows);
  seq.cache!.commitFlags(flags, out.numRows);
  seq.numComputed += out.numRows;
  if (seq.numComputed - out.numRows < seq.numPromptTokens) seq.listener.onPromptProgress?.(Math.min(seq.numComputed, seq.numPromptTokens), seq.numPromptTokens);
  reportLogits(seq, out, result, vocabSize);
  reportGateScores(seq, out, plan, result, dims);
  for (const head of out.snapHeads) {
    const scores = result.snapScores!.subarray(head.offset, head.offset + head.numGlobal);
    const indices = seq.options.policy.eviction.chooseDrops(scores, seq.cache!.head(head.layer, head.head).globalPositions);
    if (indices.length > 0) seq.pendingDrops.push({ layer: head.layer, head: head.head, indices });
  }
}

function reportLogits(seq: Sequence, out: EntryOutputs, result: StepResult, V: number): void {
  if (!result.logits || out.numLogitsRows === 0 || seq.options.logitsFrom === null || !seq.listener.onLogits) return;
  // NOTE: the sampled row is computed even below logitsFrom; each position is reported once, even across recomputes
  const skip = Math.max(0, Math.max(seq.reportedLogitsTo, seq.options.logitsFrom) - out.logitsPos0);
  const n = out.numLogitsRows - skip;
  if (n <= 0) return;
  seq.listener.onLogits(out.logitsPos0 + skip, result.logits.subarray((out.logitsRow0 + skip) * V, (out.logitsRow0 + out.numLogitsRows) * V), n);
  seq.reportedLogitsTo = out.logitsPos0 + out.numLogitsRows;
}

function reportGateScores(seq: Sequence, out: EntryOutputs, plan: StepPlan, result: StepResult, dims: AttentionDims): void {
  if (!result.gateScores || !seq.options.traceGateScores || !seq.listener.onGateScores || seq.options.policy.admission.kind !== "gate") return;
  const skip = Math.max(0, seq.reportedScoresTo - out.startPos);
  const n = out.numRows - skip;
  if (n <= 0) return;
  const { numLayers: L, numKvHeads: H } = dims;
  const T = plan.numRows;
  for (let l = 0; l < L; l++) {
    // scores [L, H, T] of the step -> [H, n] of this sequence and layer
    const scores = new Float32Array(H * n);
    for (let h = 0; h < H; h++) scores.set(result.gateScores.subarray((l * H + h) * T + out.rowStart + skip, (l * H + h) * T + out.rowStart + out.numRows), h * n);
    seq.listener.onGateScores(l, out.startPos + skip, n, scores);
  }
  seq.reportedScoresTo = out.startPos + out.numRows;
}
