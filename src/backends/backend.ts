/**
 * @module backends/backend
 *
 * The one interface the model runs on. A backend owns tensor storage and the
 * kernels the transformer and its KV cache need; only logits (or sampled ids)
 * come back to JavaScript, through the asynchronous `read`, so a GPU backend
 * fits the same engine.
 *
 * Activation tensors are allocated once for the largest chunk of tokens; every
 * op takes `numTokens`, the rows of that chunk actually in use.
 */

import type { GateWeights } from "../gate/gateWeights.js";

/** Storage type of KV pages: f32 is exact; f16 and bf16 halve the memory. */
export type KvDType = "f32" | "f16" | "bf16";

/** Element types a tensor can be stored in. bf16 is used for weights only. */
export type DType = "f32" | "bf16";

/** An opaque handle to backend memory. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** Raw weight bytes as found in a safetensors file (little-endian). */
export interface WeightData {
  readonly dtype: "F32" | "F16" | "BF16";
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** Position-dependent rotation of q and k (RoPE), precomputed per model. */
export interface RopeTable {
  /** inverse frequencies, f32 [headDim / 2] */
  readonly invFreq: Float32Array;
}

/** Page storage of the dual cache: k, v are kvDType [numPages, 16, headDim]; slot = page * 16 + offset. */
export interface KvPool {
  readonly k: Tensor;
  readonly v: Tensor;
  readonly numPages: number;
  readonly headDim: number;
  readonly kvDType: KvDType;
}

/** One layer's block tables as the attention kernel reads them (see backends/cpu/pagedAttention.ts). */
export interface HostBlockTables {
  readonly rowStride: number;
  readonly blockTables: Int32Array; //   [Hkv, rowStride] W/16 ring pages, then the global pages to read
  readonly numRing: Int32Array; //       [Hkv]
  readonly numGlobal: Int32Array; //     [Hkv]
  readonly ringPositions: Int32Array; // [Hkv, W]
  readonly ringAdmitted: Uint8Array; //  [Hkv, W]
}

/** A write gate uploaded to a backend. */
export interface GateHandle {
  readonly gate: GateWeights;
}

export interface Backend {
  readonly name: string;
  /** What runs the ops, for reports (e.g. "wasm relaxed SIMD (FMA), 2 threads"). */
  readonly description: string;

  /** Stores a weight; matrices may keep bf16, vectors and f16 become f32. */
  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor;
  /** A zeroed f32 tensor. */
  createTensor(shape: readonly number[]): Tensor;
  /** Copies the first `numElements` elements (default all) of an f32 tensor back to JS. */
  read(t: Tensor, numElements?: number): Promise<Float32Array>;

  /** out[t, :] = table[ids[t], :]   out: [T, H]; table: [V, H] */
  embed(out: Tensor, table: Tensor, ids: Int32Array): void;
  /** out[t, :] = x[t, :] / rms(x[t, :]) * weight   x, out: [rows, dim]; weight: [dim] */
  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void;
  /** out[t, n] = x[t, :] . w[n, :] + bias[n]   x: [T, K]; w: [N, K]; out: [T, N] */
  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, numTokens: number): void;
  /** Rotates x in place: x: [T, numHeads, headDim]; token t sits at position startPos + t. */
  rope(x: Tensor, table: RopeTable, numTokens: number, numHeads: number, startPos: number): void;
  /** out = silu(gate) * up, elementwise over numTokens rows of [T, I]. */
  siluMul(out: Tensor, gate: Tensor, up: Tensor, numTokens: number): void;
  /** out[0, :] = x[row, :]   (picks one token's row, e.g. the last one for logits) */
  copyRow(out: Tensor, x: Tensor, row: number): void;
  /** x += y over numTokens rows. */
  addInPlace(x: Tensor, y: Tensor, numTokens: number): void;

  /** dst[0..numTokens) rows = src rows (same row width). */
  copyRows(dst: Tensor, src: Tensor, numTokens: number): void;

  /** Page storage for `numPages` pages of 16 tokens. */
  createKvPool(numPages: number, headDim: number, kvDType: KvDType): KvPool;
  /** Writes k, v: [T, Hkv, d] into the slots slotMapping [Hkv, T] names (-1: not written). */
  writeSlots(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Int32Array, numTokens: number): void;
  /** Copies K and V of slot from[i] to slot to[i]; no source is a destination. */
  copySlots(pool: KvPool, from: Int32Array, to: Int32Array): void;
  /** Reads the keys of `slots` back as f32 [n, headDim]. */
  readKeys(pool: KvPool, slots: Int32Array): Promise<Float32Array>;
  /**
   * Attention of a chunk of queries q: [T, Hq, d] at positions startPos.. over
   * each KV head's ring (masked by the visibility rule), its listed global
   * pages, and the chunk's own keys k, v: [T, Hkv, d] (causal). out like q.
   */
  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, tables: HostBlockTables, numTokens: number, startPos: number, numHeads: number, window: number): void;

  /** Makes a write gate usable by gateScores. */
  uploadGate(gate: GateWeights): GateHandle;
  /** Write-gate scores g of one layer: kPre, kPost [T, Hkv, d] -> [Hkv, T]. */
  gateScores(gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, numTokens: number): Promise<Float32Array>;

  /** Frees all memory and threads. */
  dispose(): void;
}
