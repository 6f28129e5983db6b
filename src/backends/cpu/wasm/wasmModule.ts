/**
 * @module backends/cpu/wasm/wasmModule
 *
 * Loads the compiled kernels (assembly/, embedded by scripts/build-wasm.mjs)
 * and creates the shared memory they run on. Platform-neutral: works wherever
 * WebAssembly SIMD and SharedArrayBuffer exist (Node, cross-origin-isolated pages).
 */
import { kernelsRelaxedWasmBase64, kernelsWasmBase64 } from "./kernelsWasm.generated.js";

export const WASM_PAGE_BYTES = 65536;
/** The module declares this many pages (4 GiB) as its memory maximum. */
export const MAX_WASM_PAGES = 65536;

/** The exports of assembly/index.ts. Pointers are byte offsets; each call does one thread's share. */
export interface KernelExports {
  matmulF32(out: number, x: number, w: number, bias: number, N: number, K: number, m0: number, m1: number, n0: number, n1: number): void;
  matmulBf16(out: number, x: number, w: number, bias: number, N: number, K: number, m0: number, m1: number, n0: number, n1: number): void;
  /** Paged attention: task `task` (or reduce entry `entry`) of the call described at `desc` (pagedAttentionPlan.ts). */
  pagedAttentionTask(desc: number, task: number, scratch: number): void;
  pagedAttentionReduce(desc: number, entry: number): void;
  pagedAttentionScratchBytes(rows: number, headDim: number): number;
  rmsNormRows(out: number, x: number, weight: number, dim: number, eps: number, r0: number, r1: number): void;
  siluMulRange(out: number, gate: number, up: number, i0: number, i1: number): void;
  addRange(x: number, y: number, i0: number, i1: number): void;
  ropeRows(x: number, cosSin: number, numHeads: number, half: number, t0: number, t1: number): void;
  /** The gate scores of KV head h for tokens [t0, t1) (assembly/gate.ts). */
  gateScoresTask(
    scores: number, kPre: number, kPost: number, layer: number, stride: number, H: number, d: number, E: number, eps: number,
    h: number, t0: number, t1: number, scratch: number,
  ): void;
  gateScratchBytes(d: number, E: number): number;
  /** K or V rows of KV heads [h0, h1) into their page slots (assembly/kvWrite.ts); dtype 0 f32, 1 f16, 2 bf16. */
  writeSlots(pages: number, src: number, slots: number, T: number, H: number, d: number, dtype: number, specials: number, h0: number, h1: number): void;
}

/** Thrown where this runtime lacks what the wasm kernels need; callers fall back to the reference kernels. */
export class WasmKernelsUnsupportedError extends Error {
  override readonly name = "WasmKernelsUnsupportedError";
}

/**
 * Which build of the kernels to load: "relaxed" (relaxed SIMD, so fused
 * multiply-adds where the CPU has FMA; measured on the 2-core dev VM: matmul
 * 1.3-1.6×, attention 1.2-1.3×, a whole prefill about 1.2× faster) or
 * "baseline" (SIMD only). "auto" means relaxed where the runtime accepts it.
 */
export type KernelVariant = "relaxed" | "baseline";

const modules = new Map<KernelVariant, Promise<WebAssembly.Module>>();

/** Whether this runtime accepts the relaxed-SIMD build (Node 22+, current browsers). */
export function supportsRelaxedSimd(): boolean {
  return WebAssembly.validate(base64ToBytes(kernelsRelaxedWasmBase64));
}

/** The variant "auto" resolves to here. */
export function resolveKernelVariant(wanted: KernelVariant | "auto" = "auto"): KernelVariant {
  if (wanted !== "auto") return wanted;
  return supportsRelaxedSimd() ? "relaxed" : "baseline";
}

/** Compiles a build of the kernels once per process (or page); the module can be posted to workers. */
export function compileKernelModule(variant: KernelVariant = "baseline"): Promise<WebAssembly.Module> {
  let promise = modules.get(variant);
  if (!promise) {
    promise = (async () => {
      if (typeof SharedArrayBuffer === "undefined") {
        throw new WasmKernelsUnsupportedError("SharedArrayBuffer is unavailable (in browsers the page must be cross-origin isolated)");
      }
      const bytes = base64ToBytes(variant === "relaxed" ? kernelsRelaxedWasmBase64 : kernelsWasmBase64);
      try {
        return await WebAssembly.compile(bytes);
      } catch (cause) {
        const needs = variant === "relaxed" ? "WebAssembly SIMD, relaxed SIMD and threads are required" : "WebAssembly SIMD and threads are required";
        throw new WasmKernelsUnsupportedError(`this runtime cannot compile the kernels (${needs})`, { cause });
      }
    })();
    modules.set(variant, promise);
  }
  return promise;
}

export async function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}

/**
 * A shared memory of at least initialBytes that can grow to maxBytes. Shared
 * memories reserve their maximum up front, so where the runtime refuses that
 * reservation we retry with halved maxima down to the initial size.
 */
export function createKernelMemory(initialBytes: number, maxBytes: number): { memory: WebAssembly.Memory; maxBytes: number } {
  const initial = Math.max(1, Math.ceil(initialBytes / WASM_PAGE_BYTES));
  let maximum = Math.min(MAX_WASM_PAGES, Math.max(initial, Math.ceil(maxBytes / WASM_PAGE_BYTES)));
  for (;;) {
    try {
      return { memory: new WebAssembly.Memory({ initial, maximum, shared: true }), maxBytes: maximum * WASM_PAGE_BYTES };
    } catch (cause) {
      if (maximum <= initial) throw new WasmKernelsUnsupportedError(`cannot reserve a shared memory of ${maximum} pages`, { cause });
      maximum = Math.max(initial, maximum >>> 1);
    }
  }
}

function base64ToBytes(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
