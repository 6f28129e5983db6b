/**
 * @module backends/backend
 *
 * The device the engine runs on (docs/design.md §5). A backend owns tensors
 * with explicit lifetimes and a command queue:
 *
 * - `createTensor` / `destroyTensor`: memory on the device, zeroed at creation.
 * - `write`: copies host data into a tensor, queued in order with the ops.
 * - ops (`matmul`, `pagedAttention`, `admit`, `sample`, ...): queued, never
 *   waited for; their integer arguments are decided on the host before the
 *   step runs (the step plan), never read back in the middle of one.
 * - `submit`: the boundary of a step; the device may start on what was queued.
 * - `read`: the only synchronisation. It waits for everything queued and
 *   returns copies of the tensors asked for, all in one round trip.
 *
 * A step of the engine is: writes of the step's metadata, the forward's ops,
 * one `read` of the sampled ids and admission flags. The CPU backend runs a
 * step's commands in slices between which the event loop runs; a GPU backend
 * records them into command buffers.
 */

import type { GateWeights } from "../gate/gateWeights.js";

/** Storage type of KV pages: f32 is exact; f16 and bf16 halve the memory. */
export type KvDType = "f32" | "f16" | "bf16";

/** Element types of tensors. */
export type DType = "f32" | "f16" | "bf16" | "i32" | "u32" | "u8";

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4, u8: 1 };

/** The host array a tensor of each dtype reads back as (16-bit floats come back as their bits). */
export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;

/** An opaque handle to device memory. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly numel: number;
  /** What the tensor holds, for error messages. */
  readonly label: string;
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

/** Page storage of the dual cache: K and V, kvDType [numPages, 16, headDim]; slot = page * 16 + offset. */
export interface KvPool {
  readonly numPages: number;
  readonly headDim: number;
  readonly kvDType: KvDType;
  /** Bytes of K and V storage together. */
  readonly numBytes: number;
  /**
   * Ranges of page ids the device stores apart (1 when absent), for devices
   * that bind memory in parts (WebGPU: 2 GiB per storage binding). Page p is
   * in group floor(p / ceil(numPages / numGroups)); every page of layer l
   * must be in group floor(l * numGroups / numLayers) (kvcache/blockPool.ts
   * allocates so).
   */
  readonly numGroups?: number;
}

/** A write gate uploaded to a backend. */
export interface GateHandle {
  readonly gate: GateWeights;
}

/** The model's attention shape, as the KV ops need it. */
export interface AttentionDims {
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/**
 * Per-sequence KV state that lives on the device across steps (one row per
 * sequence slot), updated by `scatter` from the step plan and by `admit`.
 */
export interface KvTables {
  /** i32 [numSlots, numLayers, numKvHeads, rowStride]: W/16 ring pages, then global pages. */
  readonly blockTables: Tensor;
  /** u8 [numSlots, numLayers, numKvHeads, maxWindow]: admit flag of the token in each ring offset. */
  readonly ringFlags: Tensor;
  readonly numSlots: number;
  readonly rowStride: number;
  readonly maxWindow: number;
}

/** Quest's choice of global pages for decode rows: written by questSelect, read by pagedAttention. */
export interface SelectionBuffers {
  /** i32 [maxSeqs, numKvHeads, stride] chosen global page ids, full pages by index then the partial page. */
  readonly pages: Tensor;
  /** i32 [maxSeqs, numKvHeads] global tokens the chosen pages hold. */
  readonly numTokens: Tensor;
  readonly stride: number;
}

/** What one layer's attention reads besides q, k, v: the step's sequences and their tables. */
export interface AttentionBatch {
  /** i32 [maxSeqs, SEQ_FIELDS] (stepLayout.ts). */
  readonly seqs: Tensor;
  readonly numSeqs: number;
  /** i32 [maxSeqs, numLayers, numKvHeads]: global tokens each head reads (before this step's promotions). */
  readonly numGlobal: Tensor;
  readonly tables: KvTables;
  /** Present when some sequence of the step selects pages (Quest). */
  readonly selection: SelectionBuffers | null;
  /**
   * The step's admit flags, written by `admit` before the attention: a chunk
   * key more than W positions before a query is visible to it only if
   * admitted (a chunk longer than W; docs/design.md §3). Absent or null:
   * every chunk key at or before the query is visible, which is the rule
   * when no chunk is longer than its window, or under full admission.
   */
  readonly admitted?: StepAdmitFlags | null;
}

/** Where `admit` left a step's flags: u8 [numLayers, numKvHeads, numRows], flag of batch row r of KV head g in layer l at (l * numKvHeads + g) * numRows + r. */
export interface StepAdmitFlags {
  readonly flags: Tensor;
  readonly numRows: number;
}

/** One tensor to read back: its first `numElements` elements (default all). */
export interface ReadRequest {
  readonly tensor: Tensor;
  readonly numElements?: number;
}

/** Round trips and traffic, for tests and benchmarks. */
export interface BackendCounters {
  /** Calls of `read`: each one waits for the device. */
  numReads: number;
  numSubmits: number;
  numWrites: number;
  bytesWritten: number;
  bytesRead: number;
  /** Milliseconds spent in pagedAttention (where the backend can tell; benchmarks). */
  attentionMs: number;
}

export interface Backend {
  readonly name: string;
  /** What runs the ops, for reports (e.g. "wasm relaxed SIMD (FMA), 2 threads"). */
  readonly description: string;
  readonly counters: BackendCounters;
  /** The most bytes the backend can still allocate (weights already counted), or Infinity. */
  availableBytes(): number;
  /**
   * Tokens per engine step this device runs best (maxBatchTokens and prefillChunk where not given; else 512):
   * tensor cores want matmuls thousands of rows tall.
   */
  readonly preferredStepTokens?: number;
  /**
   * True where `read` records its copies and submits them when called, not
   * when awaited: work recorded after the call runs after the copies and may
   * overwrite what they read, so the engine records the next decode step
   * while this one runs (engine/stepChain.ts).
   */
  readonly queuesReads?: boolean;

  // ---- memory
  /** A zeroed tensor. */
  createTensor(shape: readonly number[], dtype: DType, label: string): Tensor;
  /** Frees a tensor once the ops queued before this call are done with it; using it afterwards is an error. */
  destroyTensor(t: Tensor): void;
  /** Stores a weight at once; matrices may keep bf16, vectors and f16 become f32. */
  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor;
  /** Copies `data` (its elements, same dtype family) into `t` from element `offset`, queued in order with the ops. */
  write(t: Tensor, data: HostArray, offset?: number): void;
  /** Hands what was queued to the device: the end of a step. */
  submit(): void;
  /** Waits for everything queued and returns copies of the tensors, in one round trip. */
  read(requests: readonly ReadRequest[]): Promise<HostArray[]>;

  // ---- the transformer's ops (rows = tokens of the batch)
  /** out[r, :] = table[ids[r], :]   out: f32 [rows, H]; table: [V, H]; ids: i32 [rows] */
  embed(out: Tensor, table: Tensor, ids: Tensor, rows: number): void;
  /** out[r, :] = x[r, :] / rms(x[r, :]) * weight   x, out: f32 [rows, dim] (out may be x); weight: f32 [dim] */
  rmsNorm(out: Tensor, x: Tensor, weight: Tensor, rows: number, eps: number): void;
  /** out[r, n] = x[r, :] . w[n, :] + bias[n]   x: f32 [rows, K]; w: [N, K]; out: f32 [rows, N] */
  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, rows: number): void;
  /** Rotates x in place: x: f32 [rows, numHeads, headDim]; row r sits at positions[r] (i32 [rows]). */
  rope(x: Tensor, positions: Tensor, rows: number, numHeads: number, table: RopeTable): void;
  /** out = silu(gate) * up over `rows` rows (out may be gate). */
  siluMul(out: Tensor, gate: Tensor, up: Tensor, rows: number): void;
  /** x += y over `rows` rows. */
  add(x: Tensor, y: Tensor, rows: number): void;
  /** dst[0..rows) = src[0..rows) (same row width). */
  copyRows(dst: Tensor, src: Tensor, rows: number): void;
  /** out[i, :] = x[rowIndex[i], :] for i < numRows   rowIndex: i32 */
  gatherRows(out: Tensor, x: Tensor, rowIndex: Tensor, numRows: number): void;

  // ---- the dual cache's ops
  /** Page storage for `numPages` pages of 16 tokens, allocated once; `numLayers` (default 1) lets it group pages by layer (KvPool.numGroups). */
  createKvPool(numPages: number, headDim: number, kvDType: KvDType, numLayers?: number): KvPool;
  /** Frees a pool once the ops queued before this call are done with it. */
  destroyKvPool(pool: KvPool): void;
  /** Writes k, v: f32 [rows, Hkv, d] to the slots slotMapping[offset + h * rows + r] names (-1: not written). */
  writeKv(pool: KvPool, k: Tensor, v: Tensor, slotMapping: Tensor, offset: number, rows: number): void;
  /** For i in [first, first + count): K and V of slot copies[i, 0] go to slot copies[i, 1]; no source is a destination. */
  copySlots(pool: KvPool, copies: Tensor, first: number, count: number): void;
  /** dst[updates[i, 0]] = updates[i, 1] for i < count   dst: i32 or u8; updates: i32 [n, 2] */
  scatter(dst: Tensor, updates: Tensor, count: number): void;
  /**
   * One layer of attention for every sequence of the batch: each query row
   * attends to its sequence's ring (DESIGN §3's rule), its global pages (or
   * Quest's choice of them) and the chunk's own keys, causally.
   * q, out: f32 [rows, Hq, d]; k, v: f32 [rows, Hkv, d].
   */
  pagedAttention(out: Tensor, q: Tensor, k: Tensor, v: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void;

  /** Makes a write gate usable by gateScores. */
  uploadGate(gate: GateWeights): GateHandle;
  /**
   * Write-gate scores of one layer for rows [row0, row0 + numRows):
   * kPre, kPost: f32 [rows, Hkv, d] -> scores[offset + h * stride + r].
   */
  gateScores(scores: Tensor, offset: number, stride: number, gate: GateHandle, layer: number, kPre: Tensor, kPost: Tensor, row0: number, numRows: number): void;
  /**
   * Admission of one layer's new tokens by each sequence's policy (its fields
   * in batch.seqs): flags[offset + h * stride + r] = admitted (u8). `scores`
   * (laid out like flags) is read for sequences admitting by the gate. The
   * ring's flags are left alone: the layer's attention still reads the old
   * tokens' there (writeRingFlags follows the step's last layer).
   * numLayers > 1: layers [layer, layer + numLayers) in one call, layer
   * layer + i at offset + i * Hkv * stride (a step without gate scores
   * decides every layer's admission before its first layer: one dispatch, not one a layer).
   */
  admit(flags: Tensor, scores: Tensor | null, offset: number, stride: number, layer: number, batch: AttentionBatch, dims: AttentionDims, numLayers?: number): void;
  /**
   * After the step's last layer (a layer's ring flags are read only by its
   * attention, in later steps): the flags `admit` wrote, of every layer
   * (flags[(layer * Hkv + h) * stride + r]), of each sequence's last
   * min(T, W) rows, those that take ring offsets, into
   * batch.tables.ringFlags at the token's ring offset (position mod W).
   * One call for all layers: one dispatch a step, not one a layer.
   */
  writeRingFlags(flags: Tensor, stride: number, batch: AttentionBatch, dims: AttentionDims): void;
  /** Recomputes the per-page key bounds (Quest) of pages[i, 0] over its first pages[i, 1] tokens, i in [first, first + count). */
  updatePageBounds(pool: KvPool, pages: Tensor, first: number, count: number): void;
  /** Quest: for decode rows of sequences with a budget, chooses the global pages to read (batch.selection). */
  questSelect(q: Tensor, pool: KvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void;
  /** Keeps the last rows of q of sequences that observe (SnapKV) in their slot of obs: f32 [numSlots, L, O, Hq * d]. */
  storeObservations(obs: Tensor, q: Tensor, layer: number, batch: AttentionBatch, dims: AttentionDims): void;
  /**
   * SnapKV's attention mass of every global token of the heads that
   * requests: i32 [n, SNAP_FIELDS] names (stepLayout.ts), into out f32 at each request's offset.
   */
  snapKvScores(out: Tensor, requests: Tensor, numRequests: number, obs: Tensor, pool: KvPool, tables: KvTables, dims: AttentionDims): void;

  /**
   * Picks one token per row: ids[i] from logits[params[i].row] by that row's
   * sampling parameters (stepLayout.ts SAMPLE_*); -1 when the logits hold a NaN.
   * ids: i32 [n]; logits: f32 [R, V]; params: f32 [n, SAMPLE_FIELDS].
   */
  sample(ids: Tensor, logits: Tensor, params: Tensor, numRows: number): void;

  /** Frees all memory and threads; the backend is unusable afterwards. */
  dispose(): void;
}

/** Elements of a shape. */
export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
