/**
 * @module backends/cpu/cpuKvOps
 *
 * The CPU backend's side of the dual cache: page storage, slot writes (in
 * the kernels, with f16/bf16 rounding), slot copies, table updates, and the
 * batched paged attention, whose per-sequence records (pagedAttention.ts)
 * are built here from the step's sequence fields and the device tables.
 */
import { DTYPE_BYTES, type AttentionBatch, type AttentionDims, type KvDType, type KvPool } from "../backend.js";
import { ADMIT_FULL, PAGE_SIZE, SEQ_ADMISSION, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import { cpu, type CpuTensor, type TensorViews } from "./cpuTensor.js";
import type { CpuKernels } from "./kernels.js";
import {
  PAGED_SEQ_FIELDS, PS_ADM_STRIDE, PS_FRESH_ADM, PS_FRESH_STRIDE, PS_GLOBAL_STRIDE, PS_GLOBAL_TABLE, PS_NUM_GLOBAL, PS_QPOS0, PS_RING_ADM, PS_RING_STRIDE, PS_RING_TABLE,
  PS_ROW0, PS_T, PS_W,
} from "./pagedAttention.js";

export interface CpuKvPool extends KvPool {
  readonly kPtr: number;
  readonly vPtr: number;
  /** i32 set to 1 once an infinity or NaN is written to the pool: until then attention widens f16 pages the cheap way and skips guarding hidden keys. */
  readonly specialsPtr: number;
  /** f32 [numPages, 2, headDim]: per page, the min then the max of its keys (Quest); 0 until first needed. */
  boundsPtr: number;
}

export function cpuPool(pool: KvPool): CpuKvPool {
  if (!("kPtr" in pool)) throw new Error("KV pool does not belong to the CPU backend");
  return pool as CpuKvPool;
}

export class CpuKvOps {
  readonly #records = new StagingArea();

  constructor(
    readonly kernels: CpuKernels,
    readonly views: TensorViews,
  ) {}

  createPool(numPages: number, headDim: number, kvDType: KvDType): CpuKvPool {
    const bytes = numPages * PAGE_SIZE * headDim * DTYPE_BYTES[kvDType];
    // NOTE: pages are written before they are read, so fresh memory need not be cleared (the OS backs touched pages only)
    const kPtr = this.kernels.alloc(bytes);
    const vPtr = this.kernels.alloc(bytes);
    const specialsPtr = this.kernels.alloc(4);
    new Int32Array(this.kernels.buffer(), specialsPtr, 1)[0] = 0;
    return { numPages, headDim, kvDType, numBytes: 2 * bytes, kPtr, vPtr, specialsPtr, boundsPtr: 0 };
  }

  destroyPool(pool: CpuKvPool): void {
    for (const ptr of [pool.kPtr, pool.vPtr, pool.specialsPtr, pool.boundsPtr]) if (ptr) this.kernels.free(ptr);
  }

  /** Element view of a pool side: Float32Array for f32, Uint16Array bits otherwise. */
  pageView(pool: CpuKvPool, ptr: number): Float32Array | Uint16Array {
    const n = pool.numPages * PAGE_SIZE * pool.headDim;
    return pool.kvDType === "f32" ? new Float32Array(this.kernels.buffer(), ptr, n) : new Uint16Array(this.kernels.buffer(), ptr, n);
  }

  writeKv(pool: CpuKvPool, k: CpuTensor, v: CpuTensor, slotMapping: CpuTensor, offset: number, rows: number): void {
    const numKvHeads = k.numel / k.shape[0] / pool.headDim;
    const slots = slotMapping.ptr + offset * 4;
    this.kernels.writeSlots(pool.kPtr, k.ptr, slots, rows, numKvHeads, pool.headDim, pool.kvDType, pool.specialsPtr);
    this.kernels.writeSlots(pool.vPtr, v.ptr, slots, rows, numKvHeads, pool.headDim, pool.kvDType, pool.specialsPtr);
  }

  copySlots(pool: CpuKvPool, copies: CpuTensor, first: number, count: number): void {
    const d = pool.headDim;
    const pairs = this.views.i32(copies, 2 * count, 2 * first);
    for (const ptr of [pool.kPtr, pool.vPtr]) {
      const view = this.pageView(pool, ptr);
      for (let i = 0; i < count; i++) view.copyWithin(pairs[2 * i + 1] * d, pairs[2 * i] * d, pairs[2 * i] * d + d);
    }
  }

  scatter(dst: CpuTensor, updates: CpuTensor, count: number): void {
    const pairs = this.views.i32(updates, 2 * count);
    const out = dst.dtype === "u8" ? this.views.u8(dst) : this.views.i32(dst);
    for (let i = 0; i < count; i++) {
      const at = pairs[2 * i];
      if (!(at >= 0 && at < out.length)) throw new RangeError(`scatter into ${dst.label}: index ${at} outside [0, ${out.length})`);
      out[at] = pairs[2 * i + 1];
    }
  }

  attention(
    out: CpuTensor, q: CpuTensor, k: CpuTensor, v: CpuTensor, pool: CpuKvPool, layer: number, batch: AttentionBatch, dims: AttentionDims,
    maybeYield: () => Promise<void> | null,
  ): void | Promise<void> {
    const { numSeqs } = batch;
    if (numSeqs === 0) return;
    const recordsPtr = this.#records.reserve(this.kernels, numSeqs * PAGED_SEQ_FIELDS * 4);
    this.#fillRecords(recordsPtr, layer, batch, dims);
    return this.kernels.pagedAttention(
      { out: out.ptr, q: q.ptr, kFresh: k.ptr, vFresh: v.ptr, kPages: pool.kPtr, vPages: pool.vPtr, seqs: recordsPtr },
      {
        numSeqs, numHeads: dims.numHeads, numKvHeads: dims.numKvHeads, headDim: dims.headDim, scale: 1 / Math.sqrt(dims.headDim),
        kvDType: pool.kvDType, pagesFinite: new Int32Array(this.kernels.buffer(), pool.specialsPtr, 1)[0] === 0,
      },
      maybeYield,
    );
  }

  /** The kernel's per-sequence records (pagedAttention.ts) of one layer, from the step's fields and the tables. */
  #fillRecords(recordsPtr: number, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const { numLayers: L, numKvHeads: H } = dims;
    const { tables, selection } = batch;
    const admitted = batch.admitted ?? null;
    const fields = this.views.i32(cpu(batch.seqs), batch.numSeqs * SEQ_FIELDS);
    const records = new Int32Array(this.kernels.buffer(), recordsPtr, batch.numSeqs * PAGED_SEQ_FIELDS);
    const blockTables = cpu(tables.blockTables), ringFlags = cpu(tables.ringFlags), numGlobal = cpu(batch.numGlobal);
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS, r = s * PAGED_SEQ_FIELDS;
      const slot = fields[f + SEQ_SLOT], W = fields[f + SEQ_WINDOW], numRows = fields[f + SEQ_NUM_ROWS];
      // NOTE: past W the chunk's own keys follow their flags, which only full admission may leave out
      if (numRows > W && !admitted && fields[f + SEQ_ADMISSION] !== ADMIT_FULL) throw new RangeError(`paged attention: sequence ${s} has a chunk of ${numRows} queries, more than its window ${W}, and the batch has no admit flags`);
      const head0 = (slot * L + layer) * H;
      const ringTable = blockTables.ptr + head0 * tables.rowStride * 4;
      records[r + PS_ROW0] = fields[f + SEQ_ROW_START];
      records[r + PS_T] = numRows;
      records[r + PS_QPOS0] = fields[f + SEQ_START_POS];
      records[r + PS_W] = W;
      records[r + PS_RING_TABLE] = ringTable;
      records[r + PS_RING_STRIDE] = tables.rowStride;
      records[r + PS_RING_ADM] = ringFlags.ptr + head0 * tables.maxWindow;
      records[r + PS_ADM_STRIDE] = tables.maxWindow;
      records[r + PS_FRESH_ADM] = admitted ? cpu(admitted.flags).ptr + layer * H * admitted.numRows + fields[f + SEQ_ROW_START] : 0;
      records[r + PS_FRESH_STRIDE] = admitted ? admitted.numRows : 0;
      if (selection && fields[f + SEQ_QUEST_BUDGET] > 0 && numRows === 1) {
        records[r + PS_GLOBAL_TABLE] = cpu(selection.pages).ptr + s * H * selection.stride * 4;
        records[r + PS_GLOBAL_STRIDE] = selection.stride;
        records[r + PS_NUM_GLOBAL] = cpu(selection.numTokens).ptr + s * H * 4;
      } else {
        records[r + PS_GLOBAL_TABLE] = ringTable + (W / PAGE_SIZE) * 4;
        records[r + PS_GLOBAL_STRIDE] = tables.rowStride;
        records[r + PS_NUM_GLOBAL] = numGlobal.ptr + (s * L + layer) * H * 4;
      }
    }
  }
}

/** A region of kernel memory reused across calls, grown (never shrunk) as needed. */
export class StagingArea {
  #ptr = 0;
  #bytes = 0;

  reserve(kernels: CpuKernels, numBytes: number): number {
    if (numBytes > this.#bytes) {
      if (this.#ptr) kernels.free(this.#ptr);
      this.#bytes = Math.max(numBytes, 2 * this.#bytes, 256);
      this.#ptr = kernels.alloc(this.#bytes);
    }
    return this.#ptr;
  }
}
