/**
 * @module backends/cpu/referenceKernels
 *
 * Plain TypeScript kernels: the semantic reference every faster kernel is
 * checked against, and the fallback where WebAssembly SIMD is unavailable.
 */
import type { CpuKernels, GateShape, WeightDType } from "./kernels.js";
import type { KvDType } from "../backend.js";
import { referenceAdd, referenceGateScores, referenceRmsNorm, referenceRope, referenceSiluMul, referenceWriteSlots } from "./referenceOps.js";

const ALIGN = 64;

/** Bump allocator over a growable ArrayBuffer-backed store. */
class ReferenceKernels implements CpuKernels {
  readonly numThreads = 1;
  readonly description = "TypeScript reference, 1 thread";
  #buffer: ArrayBuffer;
  #top = ALIGN; // NOTE: pointer 0 is reserved to mean "none" (e.g. no bias).

  constructor(initialBytes: number) {
    this.#buffer = new ArrayBuffer(initialBytes);
  }

  buffer(): ArrayBufferLike {
    return this.#buffer;
  }

  alloc(numBytes: number): number {
    const ptr = this.#top;
    const end = ptr + Math.ceil(numBytes / ALIGN) * ALIGN;
    if (end > this.#buffer.byteLength) {
      const grown = new ArrayBuffer(Math.max(end, this.#buffer.byteLength * 2));
      new Uint8Array(grown).set(new Uint8Array(this.#buffer));
      this.#buffer = grown;
    }
    this.#top = end;
    return ptr;
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
