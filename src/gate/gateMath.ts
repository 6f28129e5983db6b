/**
 * @module gate/gateMath
 *
 * The write gate's score for a token (docs/design.md §7), computed in f64 on the
 * CPU: the reference every fused backend kernel is checked against.
 *
 *   x = concat(RMSNorm_pre(k_pre), RMSNorm_post(k_post))   # [2d], eps 1e-6
 *   u = GELU(W1[h] x + b1[h])                              # [E], exact (erf) GELU
 *   g = max(sigmoid(W2[h] u + b2[h]), 1e-3)                # admitted iff g > tau
 */
import { geluErf } from "../util/erf.js";
import type { GateLayerWeights, GateWeights } from "./gateWeights.js";

/** RMSNorm epsilon of the gate's key norms (the official code's, not the model's). */
export const GATE_NORM_EPS = 1e-6;
/** Floor of g; the official code clamps here so log(g) stays finite. It never changes a decision. */
export const GATE_MIN_SCORE = 1e-3;
/** The paper's default admission threshold: admitted iff g > tau. */
export const DEFAULT_GATE_TAU = 0.1;

/** Reusable buffers for scoring (so a decode step allocates nothing). */
export interface GateScratch {
  /** The normalized, concatenated keys: [2d]. */
  readonly x: Float64Array;
  /** The hidden activations of one head: [E]. */
  readonly u: Float64Array;
}

/** Allocates scratch buffers sized for `gate`. */
export function createGateScratch(gate: GateWeights): GateScratch {
  return { x: new Float64Array(2 * gate.headDim), u: new Float64Array(gate.hiddenPerHead) };
}

/** x[xAt .. xAt+d) = RMSNorm(k[kAt .. kAt+d)) * weight. */
function rmsNormInto(k: ArrayLike<number>, kAt: number, weight: Float32Array, x: Float64Array, xAt: number, d: number): void {
  let sumSq = 0;
  for (let i = 0; i < d; i++) sumSq += k[kAt + i]! * k[kAt + i]!;
  const scale = 1 / Math.sqrt(sumSq / d + GATE_NORM_EPS);
  for (let i = 0; i < d; i++) x[xAt + i] = k[kAt + i]! * scale * weight[i]!;
}

/** g of KV head h given its normalized input x (already in scratch.x). */
function scoreHead(w: GateLayerWeights, h: number, d: number, E: number, { x, u }: GateScratch): number {
  const n = 2 * d;
  for (let i = 0; i < E; i++) {
    const row = h * E + i;
    let acc = w.b1[row]!;
    for (let j = 0, at = row * n; j < n; j++) acc += w.w1[at + j]! * x[j]!;
    u[i] = geluErf(acc);
  }
  let z = w.b2[h]!;
  for (let i = 0, at = h * E; i < E; i++) z += w.w2[at + i]! * u[i]!;
  return Math.max(1 / (1 + Math.exp(-z)), GATE_MIN_SCORE);
}

function checkLayer(gate: GateWeights, layer: number): GateLayerWeights {
  const w = gate.layers[layer];
  if (!w) throw new RangeError(`gate layer ${layer} out of range [0, ${gate.numLayers})`);
  return w;
}

/**
 * The gate score g of one token for (layer, kvHead).
 * kPre: the key before RoPE (for Qwen3: after k_norm), [headDim];
 * kPost: the same key after RoPE, [headDim].
 */
export function scoreGate(
  gate: GateWeights,
  layer: number,
  kvHead: number,
  kPre: ArrayLike<number>,
  kPost: ArrayLike<number>,
  scratch: GateScratch = createGateScratch(gate),
): number {
  const w = checkLayer(gate, layer);
  const d = gate.headDim;
  if (!(kvHead >= 0 && kvHead < gate.numKvHeads)) throw new RangeError(`KV head ${kvHead} out of range [0, ${gate.numKvHeads})`);
  if (kPre.length < d || kPost.length < d) throw new RangeError(`keys must have headDim=${d} elements`);
  rmsNormInto(kPre, 0, w.preKeyNorm, scratch.x, 0, d);
  rmsNormInto(kPost, 0, w.postKeyNorm, scratch.x, d, d);
  return scoreHead(w, kvHead, d, gate.hiddenPerHead, scratch);
}

/**
 * Gate scores of `numTokens` tokens of one layer, every KV head.
 * kPre, kPost: [numTokens, numKvHeads, headDim] (the K projection's layout);
 * out: [numKvHeads, numTokens] (one row per head, as the cache consumes them). Returns out.
 */
export function scoreGateBatch(
  gate: GateWeights,
  layer: number,
  kPre: ArrayLike<number>,
  kPost: ArrayLike<number>,
  numTokens: number,
  out: Float32Array = new Float32Array(gate.numKvHeads * numTokens),
): Float32Array {
  const w = checkLayer(gate, layer);
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
  if (kPre.length < numTokens * H * d || kPost.length < numTokens * H * d) {
    throw new RangeError(`keys must hold numTokens*numKvHeads*headDim = ${numTokens * H * d} elements`);
  }
  if (out.length < H * numTokens) throw new RangeError(`out must hold numKvHeads*numTokens = ${H * numTokens} elements`);
  const scratch = createGateScratch(gate);
  for (let t = 0; t < numTokens; t++) {
    for (let h = 0; h < H; h++) {
      const at = (t * H + h) * d;
      rmsNormInto(kPre, at, w.preKeyNorm, scratch.x, 0, d);
      rmsNormInto(kPost, at, w.postKeyNorm, scratch.x, d, d);
      out[h * numTokens + t] = scoreHead(w, h, d, E, scratch);
    }
  }
  return out;
}
