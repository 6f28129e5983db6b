/**
 * @module inspect/admissionData
 *
 * What the admission visualizer shows, gathered by running a prompt once
 * under the write gate: each token's text, the gate's score for every
 * (layer, KV head, token) (generate's onGateScores), tau, the admitted
 * counts per (layer, KV head) the cache recorded, and the KV bytes held
 * against full attention.
 */
import { startGeneration, generateAll } from "../engine/generation.js";
import type { Model } from "../engine/model.js";
import { InvalidInputError } from "../errors.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";

export interface AdmissionData {
  readonly model: string;
  readonly ids: number[];
  readonly tokens: string[];
  readonly numLayers: number;
  readonly numKvHeads: number;
  /** Admitted iff score > tau (compared in f32). */
  readonly tau: number;
  readonly window: number;
  /** scores[layer][head][position], rounded to 4 decimals (for display only: the page's size). */
  readonly scores: number[][][];
  /** admitted[layer][head]: "0"/"1" per position, from the exact f32 scores (score > tau in f32). */
  readonly admitted: string[][];
  /** Admitted tokens per [layer][head] as the cache counted them. */
  readonly admittedByHead: number[][];
  readonly kvBytes: { readonly resident: number; readonly peak: number; readonly fullAttention: number };
}

export async function collectAdmission(model: Model, modelName: string, ids: number[], policy: KvPolicy, onProgress?: (done: number, total: number) => void): Promise<AdmissionData> {
  if (policy.admission.kind !== "gate") throw new InvalidInputError("inspect needs the write gate (--gate FILE)");
  const { numLayers: L, numKvHeads: H } = model.config;
  const N = ids.length;
  const scores = Array.from({ length: L }, () => Array.from({ length: H }, () => new Float32Array(N)));
  const result = await generateAll(
    startGeneration(model, ids, {
      maxNewTokens: 0,
      onGateScores(layer, pos0, n, s) {
        for (let h = 0; h < H; h++) scores[layer][h].set(s.subarray(h * n, (h + 1) * n), pos0);
        if (layer === L - 1) onProgress?.(pos0 + n, N);
      },
    }, () => policy),
  );
  const tokenizer = model.requireTokenizer();
  return {
    model: modelName,
    ids,
    tokens: ids.map((id) => tokenizer.decode([id])),
    numLayers: L,
    numKvHeads: H,
    tau: policy.admission.tau!,
    window: policy.window,
    scores: scores.map((layer) => layer.map((row) => Array.from(row, (v) => Math.round(v * 1e4) / 1e4))),
    // NOTE: torch compares an f32 tensor with a Python float in f32, and so does the device's admit op
    admitted: scores.map((layer) => layer.map((row) => Array.from(row, (v) => (v > Math.fround(policy.admission.tau!) ? "1" : "0")).join(""))),
    admittedByHead: result.kv.admittedByHead,
    kvBytes: { resident: result.kv.residentBytes, peak: result.kv.peakBytes, fullAttention: result.kv.fullAttentionBytes },
  };
}
