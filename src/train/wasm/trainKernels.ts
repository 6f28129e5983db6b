/**
 * @module train/wasm/trainKernels
 *
 * Loads the gate trainer's WebAssembly kernels (assembly/, embedded by
 * scripts/build-wasm.mjs) on a memory of their own, with an allocator over it.
 * One instance serves one thread: the trainer parallelizes over samples, not
 * inside a call. Platform-neutral.
 */
import { KernelHeap } from "../../backends/cpu/kernelHeap.js";
import { ModelTooLargeError } from "../../errors.js";
import { createKernelMemory, resolveKernelVariant, WASM_PAGE_BYTES, type KernelVariant } from "../../backends/cpu/wasm/wasmModule.js";
import { trainRelaxedWasmBase64, trainWasmBase64 } from "./trainWasm.generated.js";

/** The exports of assembly/index.ts; pointers are byte offsets, every call runs whole on this thread. */
export interface TrainKernelExports {
  matmulF32(out: number, x: number, w: number, bias: number, N: number, K: number, m0: number, m1: number, n0: number, n1: number): void;
  matmulBf16(out: number, x: number, w: number, bias: number, N: number, K: number, m0: number, m1: number, n0: number, n1: number): void;
  rmsNormRows(out: number, x: number, weight: number, dim: number, eps: number, r0: number, r1: number): void;
  siluMulRange(out: number, gate: number, up: number, i0: number, i1: number): void;
  addRange(x: number, y: number, i0: number, i1: number): void;
  ropeRows(x: number, cosSin: number, numHeads: number, half: number, t0: number, t1: number): void;
  attnSoftmaxRows(s: number, ld: number, rows: number, G: number, i0: number, nk: number, scale: number, W: number, logG: number, lse: number): void;
  attnProbsRows(s: number, ld: number, rows: number, G: number, i0: number, nk: number, scale: number, W: number, logG: number, lse: number): void;
  attnScoreGradRows(p: number, dp: number, ld: number, rows: number, G: number, i0: number, nk: number, W: number, D: number, dLogG: number): void;
  transpose(dst: number, src: number, rows: number, cols: number, srcStride: number, dstStride: number): void;
  gemmNN(out: number, ldo: number, x: number, ldx: number, w: number, ldw: number, M: number, N: number, K: number, alpha: number, accumulate: number): void;
  gemmTN(out: number, ldo: number, x: number, ldx: number, w: number, ldw: number, M: number, N: number, K: number, alpha: number, accumulate: number): void;
  rmsNormBackwardRows(dx: number, dy: number, x: number, weight: number, dWeight: number, dim: number, eps: number, accumulate: number, r0: number, r1: number): void;
  siluMulBackwardRange(dGate: number, dUp: number, dy: number, gate: number, up: number, i0: number, i1: number): void;
  geluRange(out: number, a: number, i0: number, i1: number): void;
  geluBackwardRange(da: number, du: number, a: number, i0: number, i1: number): void;
  axpyRange(y: number, x: number, alpha: number, i0: number, i1: number): void;
  heapBase(): number;
}

/** The kernels, their memory and its allocator. */
export interface TrainKernels {
  readonly exports: TrainKernelExports;
  readonly memory: WebAssembly.Memory;
  readonly heap: KernelHeap;
  readonly variant: KernelVariant;
}

const ALIGN = 64;

/** Instantiates the kernels on a fresh memory that grows up to maxBytes (default 4 GiB). */
export async function createTrainKernels(options: { variant?: KernelVariant | "auto"; maxBytes?: number } = {}): Promise<TrainKernels> {
  const variant = resolveTrainVariant(options.variant);
  const bytes = base64ToBytes(variant === "relaxed" ? trainRelaxedWasmBase64 : trainWasmBase64);
  const module = await WebAssembly.compile(bytes);
  const { memory, maxBytes } = createKernelMemory(16 << 20, options.maxBytes ?? 4 * 2 ** 30);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const exports = instance.exports as unknown as TrainKernelExports;
  // NOTE: the module's static data (Mathf.log's tables) sits at the bottom of the memory: buffers start
  // above it. Pointer 0 stays reserved either way: the kernels read it as "none" (no bias, no gate).
  const heap = new KernelHeap(Math.max(ALIGN, exports.heapBase()), (end) => grow(memory, end, maxBytes));
  return { exports, memory, heap, variant };
}

/** "relaxed" where this runtime validates the relaxed-SIMD build (and it was not declined), else "baseline". */
function resolveTrainVariant(wanted: KernelVariant | "auto" = "auto"): KernelVariant {
  if (wanted === "baseline") return "baseline";
  const ok = WebAssembly.validate(base64ToBytes(trainRelaxedWasmBase64));
  if (wanted === "relaxed" && !ok) throw new Error("this runtime cannot run the relaxed-SIMD build of the training kernels");
  return ok ? "relaxed" : resolveKernelVariant("baseline");
}

function grow(memory: WebAssembly.Memory, end: number, maxBytes: number): void {
  const size = memory.buffer.byteLength;
  if (end <= size) return;
  if (end > maxBytes) {
    throw new ModelTooLargeError(`training on the CPU needs more than its ${(maxBytes / 2 ** 30).toFixed(1)} GiB of WebAssembly memory per worker at this model and --length; use a shorter --length`);
  }
  const wanted = Math.min(maxBytes, Math.max(end, size + (size >>> 1)));
  memory.grow(Math.ceil((wanted - size) / WASM_PAGE_BYTES));
}

function base64ToBytes(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
