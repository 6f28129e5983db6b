/**
 * @module bench/flops
 *
 * Floating-point operation counts of the forward pass, for GFLOP/s figures.
 * A multiply-add counts as 2.
 */
import type { ModelConfig } from "../model/config.js";

/** FLOPs of the linear layers for one token (without the LM head). */
export function linearFlopsPerToken(c: ModelConfig): number {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const attention = c.hiddenSize * (qDim + 2 * kvDim) + qDim * c.hiddenSize;
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  return 2 * c.numLayers * (attention + mlp);
}

/** FLOPs of the LM head for one token. */
export function lmHeadFlops(c: ModelConfig): number {
  return 2 * c.hiddenSize * c.vocabSize;
}

/** FLOPs of attention for one query over `numKeys` keys, all layers (q.k and p.v). */
export function attentionFlops(c: ModelConfig, numKeys: number): number {
  return 4 * c.numLayers * c.numHeads * c.headDim * numKeys;
}

/** FLOPs of a full-attention prefill of n tokens (LM head on the last one only). */
export function prefillFlops(c: ModelConfig, n: number): number {
  // NOTE: query i sees i + 1 keys, so the attention total is n(n+1)/2 key visits.
  return n * linearFlopsPerToken(c) + attentionFlops(c, (n * (n + 1)) / 2) + lmHeadFlops(c);
}

/** FLOPs of decoding `m` tokens after a context of n. */
export function decodeFlops(c: ModelConfig, n: number, m: number): number {
  let keys = 0;
  for (let i = 0; i < m; i++) keys += n + i + 1;
  return m * (linearFlopsPerToken(c) + lmHeadFlops(c)) + attentionFlops(c, keys);
}
