/**
 * @module backends/cpu/cpuKvOps
 *
 * The CPU backend's side of the dual cache: page storage, slot writes (in
 * the kernels, with f16/bf16 rounding) and copies, and paged attention,
 * native when the kernels provide it and in plain TypeScript otherwise.
 */
import { f16BitsToF32 } from "../../util/halfFloat.js";
import type { HostBlockTables, KvDType, KvPool } from "../backend.js";
import type { CpuTensor } from "./cpuBackend.js";
import type { CpuKernels } from "./kernels.js";
import { PAGE_SIZE, type PagedAttentionKernel, type PagedAttentionParams, type PagedAttentionPointers } from "./pagedAttention.js";
import { jsPagedAttention } from "./pagedAttentionJs.js";

export interface CpuKvPool extends KvPool {
  readonly kPtr: number;
  readonly vPtr: number;
  /** i32 set to 1 once an f16 infinity or NaN is written to the pool: until then attention widens pages the cheap way. */
  readonly specialsPtr: number;
}

const BYTES: Record<KvDType, number> = { f32: 4, f16: 2, bf16: 2 };

export function hasPagedAttention(k: CpuKernels): k is CpuKernels & PagedAttentionKernel {
  return typeof (k as Partial<PagedAttentionKernel>).pagedAttention === "function";
}

export class CpuKvOps {
  readonly #tables = new StagingArea();
  readonly #slots = new StagingArea();

  constructor(readonly kernels: CpuKernels) {}

  createPool(numPages: number, headDim: number, kvDType: KvDType): CpuKvPool {
    const bytes = numPages * PAGE_SIZE * headDim * BYTES[kvDType];
    const kPtr = this.kernels.alloc(bytes);
    const vPtr = this.kernels.alloc(bytes);
    const specialsPtr = this.kernels.alloc(4);
    new Int32Array(this.kernels.buffer(), specialsPtr, 1)[0] = 0;
    const shape = [numPages, PAGE_SIZE, headDim];
    const handle = { shape, dtype: "f32" as const };
    return { k: handle, v: handle, numPages, headDim, kvDType, kPtr, vPtr, specialsPtr };
  }

  /** Element view of a pool side: Float32Array for f32, Uint16Array bits otherwise. */
  #view(pool: CpuKvPool, ptr: number): Float32Array | Uint16Array {
    const n = pool.numPages * PAGE_SIZE * pool.headDim;
    return pool.kvDType === "f32" ? new Float32Array(this.kernels.buffer(), ptr, n) : new Uint16Array(this.kernels.buffer(), ptr, n);
  }

  writeSlots(pool: CpuKvPool, k: CpuTensor, v: CpuTensor, slotMapping: Int32Array, numTokens: number): void {
    const numKvHeads = slotMapping.length / numTokens;
    const [slots] = this.#slots.put(this.kernels, [slotMapping]);
    this.kernels.writeSlots(pool.kPtr, k.ptr, slots, numTokens, numKvHeads, pool.headDim, pool.kvDType, pool.specialsPtr);
    this.kernels.writeSlots(pool.vPtr, v.ptr, slots, numTokens, numKvHeads, pool.headDim, pool.kvDType, pool.specialsPtr);
  }

  copySlots(pool: CpuKvPool, from: Int32Array, to: Int32Array): void {
    const d = pool.headDim;
    for (const ptr of [pool.kPtr, pool.vPtr]) {
      const view = this.#view(pool, ptr);
      for (let i = 0; i < from.length; i++) view.copyWithin(to[i] * d, from[i] * d, from[i] * d + d);
    }
  }

  readKeys(pool: CpuKvPool, slots: Int32Array): Float32Array {
    const d = pool.headDim;
    const view = this.#view(pool, pool.kPtr);
    const out = new Float32Array(slots.length * d);
    const decode = decoder(pool.kvDType);
    for (let n = 0; n < slots.length; n++) {
      for (let i = 0; i < d; i++) out[n * d + i] = decode ? decode(view[slots[n] * d + i]) : view[slots[n] * d + i];
    }
    return out;
  }

  attention(out: CpuTensor, q: CpuTensor, k: CpuTensor, v: CpuTensor, pool: CpuKvPool, tables: HostBlockTables, numTokens: number, startPos: number, numHeads: number, window: number): void {
    const numKvHeads = tables.numRing.length;
    const params: PagedAttentionParams = {
      numQueries: numTokens,
      qPos0: startPos,
      numHeads,
      numKvHeads,
      headDim: pool.headDim,
      scale: 1 / Math.sqrt(pool.headDim),
      window,
      rowStride: tables.rowStride,
      kvDType: pool.kvDType,
      pagesFinite: new Int32Array(this.kernels.buffer(), pool.specialsPtr, 1)[0] === 0,
    };
    const ptrs = this.#uploadTables(tables, { out: out.ptr, q: q.ptr, kFresh: k.ptr, vFresh: v.ptr, kPages: pool.kPtr, vPages: pool.vPtr });
    if (hasPagedAttention(this.kernels)) this.kernels.pagedAttention(ptrs, params);
    else jsPagedAttention(this.kernels.buffer(), ptrs, params);
  }

  /** Copies the host block tables into kernel memory. */
  #uploadTables(t: HostBlockTables, base: Omit<PagedAttentionPointers, "blockTables" | "numRing" | "numGlobal" | "ringPositions" | "ringAdmitted">): PagedAttentionPointers {
    const [blockTables, numRing, numGlobal, ringPositions, ringAdmitted] = this.#tables.put(this.kernels, [t.blockTables, t.numRing, t.numGlobal, t.ringPositions, t.ringAdmitted]);
    return { ...base, blockTables, numRing, numGlobal, ringPositions, ringAdmitted };
  }
}

/** Host arrays copied into kernel memory, 64-byte aligned, in one region grown (never shrunk) as needed. */
class StagingArea {
  #ptr = 0;
  #bytes = 0;
  /** Copies the arrays in; returns their pointers. */
  put(kernels: CpuKernels, arrays: readonly ArrayBufferView[]): number[] {
    const align = (n: number) => Math.ceil(n / 64) * 64;
    const total = arrays.reduce((sum, a) => sum + align(a.byteLength), 0);
    if (total > this.#bytes) {
      this.#bytes = Math.max(total, 2 * this.#bytes);
      this.#ptr = kernels.alloc(this.#bytes);
    }
    const buffer = kernels.buffer();
    let at = this.#ptr;
    return arrays.map((a) => {
      new Uint8Array(buffer, at, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      const ptr = at;
      at += align(a.byteLength);
      return ptr;
    });
  }
}

function decoder(dtype: KvDType): ((bits: number) => number) | null {
  if (dtype === "f16") return f16BitsToF32;
  if (dtype === "bf16") {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    return (bits) => {
      u[0] = bits << 16;
      return f[0];
    };
  }
  return null;
}
