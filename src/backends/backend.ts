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

/** Contiguous per-layer KV store: k, v are f32 [numKvHeads, capacity, headDim]. */
export interface KvLayerStore {
  readonly k: Tensor;
  readonly v: Tensor;
  readonly capacity: number;
}

export interface Backend {
  readonly name: string;

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

  /** A KV store for one layer with room for `capacity` tokens. */
  createKvStore(numKvHeads: number, capacity: number, headDim: number): KvLayerStore;
  /** Writes k, v: [T, numKvHeads, headDim] at positions startPos.. of the store. */
  writeKv(store: KvLayerStore, k: Tensor, v: Tensor, numTokens: number, startPos: number): void;
  /** Causal GQA attention of q: [T, numHeads, headDim] at startPos.. over the store; out like q. */
  attention(out: Tensor, q: Tensor, store: KvLayerStore, numTokens: number, startPos: number, numHeads: number): void;

  /** Frees all memory and threads. */
  dispose(): void;
}
