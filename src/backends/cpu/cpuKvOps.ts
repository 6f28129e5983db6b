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
  #scratchPtr = 0;
  #scratchBytes = 0;
  readonly #slots = new KernelArray();

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
    const slots = this.#slots.put(this.kernels, slotMapping);
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

  /** Copies the host block tables into kernel memory (one scratch region, grown as needed). */
  #uploadTables(t: HostBlockTables, base: Omit<PagedAttentionPointers, "blockTables" | "numRing" | "numGlobal" | "ringPositions" | "ringAdmitted">): PagedAttentionPointers {
    const align = (n: number) => Math.ceil(n / 64) * 64;
    const sizes = [t.blockTables.byteLength, t.numRing.byteLength, t.numGlobal.byteLength, t.ringPositions.byteLength, t.ringAdmitted.byteLength].map(align);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > this.#scratchBytes) {
      this.#scratchBytes = Math.max(total, this.#scratchBytes * 2);
      this.#scratchPtr = this.kernels.alloc(this.#scratchBytes);
    }
    const buffer = this.kernels.buffer();
    const ptrs: number[] = [];
    let at = this.#scratchPtr;
    [t.blockTables, t.numRing, t.numGlobal, t.ringPositions, t.ringAdmitted].forEach((array, i) => {
      new Uint8Array(buffer, at, array.byteLength).set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      ptrs.push(at);
      at += sizes[i];
    });
    const [blockTables, numRing, numGlobal, ringPositions, ringAdmitted] = ptrs;
    return { ...base, blockTables, numRing, numGlobal, ringPositions, ringAdmitted };
  }
}

/** An Int32Array copied into kernel memory, in one region grown as needed. */
class KernelArray {
  #ptr = 0;
  #capacity = 0;
  put(kernels: CpuKernels, data: Int32Array): number {
    if (data.length > this.#capacity) {
      this.#capacity = Math.max(data.length, 2 * this.#capacity);
      this.#ptr = kernels.alloc(this.#capacity * 4);
    }
    new Int32Array(kernels.buffer(), this.#ptr, data.length).set(data);
    return this.#ptr;
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
