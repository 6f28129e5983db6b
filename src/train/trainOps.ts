/**
 * @module train/trainOps
 *
 * The gate trainer's device contract: the op list a backend implements so the
 * training step (train/studentPass.ts) can run on it. Every forward op that
 * the backward pass needs has its backward here, written for a frozen
 * backbone: input gradients only, except the write gate's own parameters.
 * The implementations are cpu/cpuTrainOps.ts and webgpu/webgpuTrainOps.ts.
 * Each op is checked against an f64 reference and finite
 * differences by trainOps.conformance.ts, which any implementation can run.
 *
 * Shapes: T tokens, H hidden, Hq / Hkv query / KV heads, G = Hq / Hkv,
 * d head dim, E gate hidden units per KV head. Buffers are f32, row-major.
 * Ops are queued in order; `read` is the only synchronisation.
 */
import type { RopeTable, WeightData } from "../backends/backend.js";

/** An f32 buffer on the device. */
export interface TBuf {
  readonly numel: number;
  readonly label: string;
}

/** A frozen weight matrix [rows, cols] (as HF stores Linear weights: [out, in]). */
export interface TMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly label: string;
}

/** The attention of one layer: causal, grouped-query, with the soft write gate outside the local window. */
export interface AttentionDims {
  readonly T: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** The local window W: key j is biased by log g_j for queries i with i - j >= W. */
  readonly window: number;
  /** Logit scale, 1/sqrt(d). */
  readonly scale: number;
}

/** The write gate of one layer (docs/design.md §7). */
export interface GateDims {
  readonly T: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Hidden units per KV head, e * d. */
  readonly hidden: number;
}

/** A layer's gate parameters inside the flat parameter buffer: offsets of each part (see train/gateParams.ts). */
export interface GateLayerOffsets {
  readonly preKeyNorm: number; //  [d]
  readonly postKeyNorm: number; // [d]
  readonly w1: number; //          [Hkv * E, 2d]
  readonly b1: number; //          [Hkv * E]
  readonly w2: number; //          [Hkv * E]
  readonly b2: number; //          [Hkv]
}

/** What the gate's forward keeps for its backward (one layer). */
export interface GateActivations {
  readonly x: TBuf; //    [Hkv, T, 2d]  normed keys (pre, post), weights applied
  readonly a: TBuf; //    [Hkv, T, E]   W1 x + b1, before GELU
  readonly g: TBuf; //    [Hkv, T]      max(sigmoid(z), 1e-3)
  readonly logG: TBuf; // [Hkv, T]      log g, the attention's bias
}

export interface TrainOps {
  /** What runs the ops, for reports. */
  readonly description: string;

  // ---- memory
  /** A zeroed buffer of numel floats. */
  alloc(numel: number, label: string): TBuf;
  free(b: TBuf): void;
  write(b: TBuf, data: Float32Array, offset?: number): void;
  /** A copy of the first `numel` floats (default all): waits for the ops queued before. */
  read(b: TBuf, numel?: number): Promise<Float32Array>;
  fill(b: TBuf, value: number, numel?: number): void;
  /** A frozen weight matrix (F32, F16 or BF16 bytes), kept as the forward and the input gradient need it. */
  uploadMatrix(data: WeightData, label: string): TMatrix;
  freeMatrix(m: TMatrix): void;

  // ---- elementwise
  /** x[i] += y[i] over n. */
  add(x: TBuf, y: TBuf, n: number): void;
  /** y[i] += alpha * x[i] over n. */
  axpy(y: TBuf, x: TBuf, alpha: number, n: number): void;
  copy(dst: TBuf, src: TBuf, n: number): void;

  // ---- the backbone (frozen)
  /** out[t, :] = table[ids[t], :], out [T, cols]. */
  embed(out: TBuf, table: TMatrix, ids: Int32Array): void;
  /** out [rows, w.rows] = x [rows, w.cols] · w^T + bias. */
  matmul(out: TBuf, x: TBuf, w: TMatrix, bias: TBuf | null, rows: number): void;
  /** dx [rows, w.cols] (+)= dy [rows, w.rows] · w: the input gradient of matmul. */
  matmulInputGrad(dx: TBuf, dy: TBuf, w: TMatrix, rows: number, accumulate: boolean): void;
  /** out = weight * x / sqrt(mean(x^2) + eps) per row of dim; out may be x. */
  rmsNorm(out: TBuf, x: TBuf, weight: TBuf, rows: number, dim: number, eps: number): void;
  /** dx (+)= the input gradient of rmsNorm at x; dWeight (if given) += its weight gradient. */
  rmsNormBackward(dx: TBuf, dy: TBuf, x: TBuf, weight: TBuf, rows: number, dim: number, eps: number, accumulate: boolean, dWeight: TBuf | null): void;
  /** cos/sin of positions 0..T-1 [T, 2, d/2]; `inverse` negates sin: the rotation back (RoPE's backward). */
  ropeAngles(T: number, table: RopeTable, inverse: boolean): TBuf;
  /** Rewrites `out` [T, 2, d/2] with the angles of positions offset..offset+T-1. */
  writeRopeAngles(out: TBuf, T: number, table: RopeTable, inverse: boolean, offset: number): void;
  /** Rotates x [T, numHeads, d] in place by `angles`. */
  rope(x: TBuf, angles: TBuf, T: number, numHeads: number, headDim: number): void;
  /** out = silu(gate) * up over n; out may be gate. */
  siluMul(out: TBuf, gate: TBuf, up: TBuf, n: number): void;
  siluMulBackward(dGate: TBuf, dUp: TBuf, dy: TBuf, gate: TBuf, up: TBuf, n: number): void;

  // ---- soft-gated attention
  /**
   * out [T, Hq, d] = softmax(scale q k^T + bias) v over visible keys (j <= i), bias
   * log g_j where i - j >= W (logG [Hkv, T]; null: full attention). q [T, Hq, d]
   * and k [T, Hkv, d] after RoPE, v [T, Hkv, d]. lse [Hkv, T, G]: each row's log-normalizer.
   */
  attention(out: TBuf, lse: TBuf, q: TBuf, k: TBuf, v: TBuf, logG: TBuf | null, dims: AttentionDims): void;
  /** dq, dk, dv (and dLogG [Hkv, T], when the gate is on) are overwritten with the gradients of attention at dOut. */
  attentionBackward(
    dq: TBuf, dk: TBuf, dv: TBuf, dLogG: TBuf | null, dOut: TBuf,
    q: TBuf, k: TBuf, v: TBuf, out: TBuf, lse: TBuf, logG: TBuf | null, dims: AttentionDims,
  ): void;

  // ---- the write gate (trained)
  /** g of every (KV head, token) from kPre, kPost [T, Hkv, d]; params: the flat buffer, `at` this layer's offsets. */
  gate(acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims): void;
  /**
   * Backward from dLogG [Hkv, T] (the gradient w.r.t. log g): dParams (at `at`) +=
   * the parameter gradients; dKPre, dKPost [T, Hkv, d] += the key gradients.
   */
  gateBackward(
    dKPre: TBuf, dKPost: TBuf, dParams: TBuf, dLogG: TBuf,
    acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims,
  ): void;

  // ---- losses (results go to a stats buffer, read once at the end)
  /** stats[slot] = mean((y - target)^2) over n; dy = scale * 2 (y - target) / n. */
  mse(dy: TBuf, y: TBuf, target: TBuf, n: number, scale: number, stats: TBuf, slot: number): void;
  /**
   * The sparsity term of one layer: stats[slot] += sum over (h, s) of o_s + (1 - o_s)(1 - (g - 1)^2),
   * o_s = min(1, W / (T - s)); dLogG += weight * d(term)/d(log g) (= weight * (1 - o_s) * -2 (g - 1) * g).
   */
  sparsity(dLogG: TBuf, g: TBuf, T: number, numKvHeads: number, window: number, weight: number, stats: TBuf, slot: number): void;
  /** stats[slot] += the number of the first n values of g above tau (admitted tokens). */
  countAbove(g: TBuf, n: number, tau: number, stats: TBuf, slot: number): void;
}
