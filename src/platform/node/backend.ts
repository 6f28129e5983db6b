/**
 * @module platform/node/backend
 *
 * Chooses and builds a backend in Node.js.
 */
import type { Backend } from "../../backends/backend.js";
import { CpuBackend } from "../../backends/cpu/cpuBackend.js";
import { createReferenceKernels } from "../../backends/cpu/referenceKernels.js";
import type { KernelVariant } from "../../backends/cpu/wasm/wasmModule.js";
import { InvalidInputError } from "../../errors.js";

/** "cpu": WebAssembly SIMD kernels on worker threads; "cpu-reference": plain loops, one thread. */
export type BackendName = "cpu" | "cpu-reference";
export const BACKEND_NAMES: readonly BackendName[] = ["cpu", "cpu-reference"];

/** Which build of the wasm kernels "cpu" runs (see backends/cpu/wasm/wasmModule.ts). */
export type SimdBuild = KernelVariant | "auto";
export const SIMD_BUILDS: readonly SimdBuild[] = ["auto", "relaxed", "baseline"];

export interface BackendOptions {
  readonly backend?: BackendName;
  /** Threads for the CPU kernels (default: all cores). */
  readonly threads?: number;
  /** Kernel build for "cpu" (default "auto": relaxed SIMD where the runtime has it). */
  readonly simd?: SimdBuild;
}

export async function createBackend(options: BackendOptions = {}): Promise<Backend> {
  const name = options.backend ?? "cpu";
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new InvalidInputError(`--threads must be a positive integer, got ${options.threads}`);
  }
  switch (name) {
    case "cpu-reference":
      return new CpuBackend(createReferenceKernels(), "cpu-reference");
    case "cpu": {
      const { createNodeWasmKernels } = await import("./kernelWorkers.js");
      return new CpuBackend(await createNodeWasmKernels({ numThreads: options.threads, variant: options.simd }), "cpu");
    }
    default:
      throw new InvalidInputError(`unknown backend "${String(name)}" (supported: ${BACKEND_NAMES.join(", ")})`);
  }
}
