/**
 * @module backends/cpu/kernels
 *
 * The contract between the CPU backend and its compute kernels. Every tensor
 * lives in one linear memory (a WebAssembly.Memory for the fast kernels, a
 * plain ArrayBuffer for the reference), addressed by byte offsets ("pointers").
 * Kernels are synchronous: the CPU backend wraps them behind the async Backend
 * interface.
 *
 * Two implementations pass one conformance suite (kernels.conformance.ts,
 * lightOps.conformance.ts, pagedAttention.conformance.ts):
 * - `createReferenceKernels()`: plain TypeScript loops, the semantic reference.
 * - `createWasmKernels()`: WebAssembly SIMD (with fused multiply-add where the
 *   runtime has relaxed SIMD), split across worker threads.
 */

import type { KvDType } from "../backend.js";
import type { PagedAttentionKernel } from "./pagedAttention.js";

/** Storage dtypes of weight matrices as the kernels read them. */
export type WeightDType = "f32" | "bf16";

/** Dimensions of a gate call: T tokens, H KV heads of head dim d, E hidden units per head; score of (h, t) at h * stride + t. */
export interface GateShape {
  readonly T: number;
  readonly stride: number;
  readonly H: number;
  readonly d: number;
  readonly E: number;
}

export interface CpuKernels extends PagedAttentionKernel {
  /** Current backing buffer; re-read after alloc(), which may grow it. */
  buffer(): ArrayBufferLike;
  /** Reserves numBytes, 64-byte aligned, never moving live allocations. Returns the pointer. */
  alloc(numBytes: number): number;
  /** alloc(), also telling whether the block was never used before (so still zero). */
  allocBlock(numBytes: number): { ptr: number; fresh: boolean };
  /** Returns a block from alloc(). */
  free(ptr: number): void;
  /** The most bytes the memory can grow to. */
  readonly maxBytes: number;
  /** Bytes below the allocator's top (live and free blocks). */
  readonly usedBytes: number;
  /** Number of threads the kernels split their work across. */
  readonly numThreads: number;
  /** What runs the kernels, for reports (e.g. "wasm relaxed SIMD (FMA), 2 threads"). */
  readonly description: string;

  /**
   * out[m, n] = sum_k x[m, k] * w[n, k] + (bias ? bias[n] : 0)
   * x: f32 [M, K]; w: wDType [N, K] (row-major, as HF stores Linear weights);
   * bias: f32 [N] or 0 for none; out: f32 [M, N]. out must not alias x.
   */
  matmul(out: number, x: number, w: number, wDType: WeightDType, bias: number, M: number, N: number, K: number): void;

  /**
   * out[r, :] = weight * (x[r, :] / sqrt(mean(x[r, :]^2) + eps)), as transformers' RMSNorm in f32.
   * x, out: f32 [rows, dim] (out may be x); weight: f32 [dim].
   */
  rmsNorm(out: number, x: number, weight: number, rows: number, dim: number, eps: number): void;
  /** out[i] = silu(gate[i]) * up[i] over n floats (out may be gate). */
  siluMul(out: number, gate: number, up: number, n: number): void;
  /** x[i] += y[i] over n floats. */
  add(x: number, y: number, n: number): void;
  /**
   * Rotary embedding in place: x f32 [T, numHeads, 2 * half]; cosSin f32
   * [T, 2, half] holds token t's cos, then sin, per frequency. The halves (a, b)
   * of each head become (a cos - b sin, b cos + a sin).
   */
  rope(x: number, cosSin: number, T: number, numHeads: number, half: number): void;
  /**
   * Write-gate scores g of one layer (docs/design.md §7; gate/gateMath.ts is the f64 reference).
   * layer: the layer's weights packed as gateLayout.ts describes; kPre, kPost: f32 [T, H, d]
   * (keys before and after RoPE); scores: f32, token t of head h at h * stride + t.
   */
  gateScores(scores: number, kPre: number, kPost: number, layer: number, p: GateShape): void;
  /**
   * Writes K or V rows into page slots: row (t, h) of src f32 [T, H, d] goes to
   * slot slots[h * T + t] (slots: i32 [H, T]; -1 skips the row) of pages
   * [numSlots, d] stored as kvDType, rounded to nearest even for f16 / bf16.
   * When a value written is infinite or NaN (in any page type), the i32 at
   * `specials` is set to 1 (it is never cleared; paged attention's `pagesFinite` reads it).
   */
  writeSlots(pages: number, src: number, slots: number, T: number, H: number, d: number, kvDType: KvDType, specials: number): void;

  /** Frees threads and memory; the instance is unusable afterwards. */
  dispose(): void;
}
