/**
 * @module backends/cpu/referenceKernels
 *
 * Plain TypeScript kernels: the semantic reference every faster kernel is
 * checked against, and the fallback where WebAssembly SIMD is unavailable.
 */
import type { CpuKernels, GateShape, WeightDType } from "./kernels.js";
import type { KvDType } from "../backend.js";
import { KernelHeap } from "./kernelHeap.js";
import type { PagedAttentionParams, PagedAttentionPointers } from "./pagedAttention.js";
import { jsPagedAttention } from "./pagedAttentionJs.js";
import { referenceAdd, referenceGateScores, referenceRmsNorm, referenceRope, referenceSiluMul, referenceWriteSlots } from "./referenceOps.js";

const ALIGN = 64;

/** Plain loops over a growable ArrayBuffer (regrowing copies it: views are re-read after alloc). */
class ReferenceKernels implements CpuKernels {
  readonly numThreads = 1;
  readonly description = "TypeScript reference, 1 thread";
  readonly maxBytes = 2 ** 31;
  #buffer: ArrayBuffer;
  readonly #heap: KernelHeap;

  constructor(initialBytes: number) {
    this.#buffer = new ArrayBuffer(initialBytes);
    // NOTE: pointer 0 is reserved to mean "none" (e.g. no bias).
    this.#heap = new KernelHeap(ALIGN, (end) => {
      if (end <= this.#buffer.byteLength) return;
      if (end > this.maxBytes) throw new RangeError(`reference kernels: cannot grow memory to ${end} bytes (the limit is ${this.maxBytes})`);
      const grown = new ArrayBuffer(Math.min(this.maxBytes, Math.max(end, this.#buffer.byteLength * 2)));
      new Uint8Array(grown).set(new Uint8Array(this.#buffer));
      this.#buffer = grown;
    });
  }

  buffer(): ArrayBufferLike {
    return this.#buffer;
  }

  get usedBytes(): number {
    return this.#heap.top;
  }

  alloc(numBytes: number): number {
    return this.#heap.alloc(numBytes).ptr;
  }

  allocBlock(numBytes: number): { ptr: number; fresh: boolean } {
    return this.#heap.alloc(numBytes);
  }

  free(ptr: number): void {
    this.#heap.free(ptr);
  }

  pagedAttention(ptrs: PagedAttentionPointers, p: PagedAttentionParams): void {
    jsPagedAttention(this.#buffer, ptrs, p);
  }

  matmul(out: number, x: number, w: number, wDType: WeightDType, bias: number, M: number, N: number, K: number): void {
    const buf = this.#buffer;
    const xs = new Float32Array(buf, x, M * K);
    const ys = new Float32Array(buf, out, M * N);
    const bs = bias ? new Float32Array(buf, bias, N) : null;
    const ws = wDType === "f32" ? new Float32Array(buf, w, N * K) : bf16ToF32(new Uint16Array(buf, w, N * K));
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += xs[m * K + k] * ws[n * K + k];
        ys[m * N + n] = acc + (bs ? bs[n] : 0);
      }
    }
  }

  rmsNorm(out: number, x: number, weight: number, rows: number, dim: number, eps: number): void {
    referenceRmsNorm(this.#buffer, out, x, weight, rows, dim, eps);
  }

  siluMul(out: number, gate: number, up: number, n: number): void {
    referenceSiluMul(this.#buffer, out, gate, up, n);
  }

  add(x: number, y: number, n: number): void {
    referenceAdd(this.#buffer, x, y, n);
  }

  rope(x: number, cosSin: number, T: number, numHeads: number, half: number): void {
    referenceRope(this.#buffer, x, cosSin, T, numHeads, half);
  }

  gateScores(scores: number, kPre: number, kPost: number, layer: number, p: GateShape): void {
    referenceGateScores(this.#buffer, scores, kPre, kPost, layer, p);
  }

  writeSlots(pages: number, src: number, slots: number, T: number, H: number, d: number, kvDType: KvDType, specials: number): void {
    referenceWriteSlots(this.#buffer, pages, src, slots, T, H, d, kvDType, specials);
  }

  dispose(): void {
    this.#buffer = new ArrayBuffer(0);
  }
}

/** Widens bf16 bit patterns to f32 exactly (bf16 is the top half of an f32). */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return new Float32Array(bits.buffer);
}

export function createReferenceKernels(initialBytes = 1 << 20): CpuKernels {
  return new ReferenceKernels(initialBytes);
}
