/**
 * @module platform/node/backend
 *
 * Chooses and builds a backend in Node.js.
 */
import type { Backend } from "../../backends/backend.js";
import { CpuBackend } from "../../backends/cpu/cpuBackend.js";
import { createReferenceKernels } from "../../backends/cpu/referenceKernels.js";
import { InvalidInputError } from "../../errors.js";

/** "cpu": WebAssembly SIMD kernels on worker threads; "cpu-reference": plain loops, one thread. */
export type BackendName = "cpu" | "cpu-reference";
export const BACKEND_NAMES: readonly BackendName[] = ["cpu", "cpu-reference"];

export interface BackendOptions {
  readonly backend?: BackendName;
  /** Threads for the CPU kernels (default: all cores). */
  readonly threads?: number;
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
      return new CpuBackend(await createNodeWasmKernels({ numThreads: options.threads }), "cpu");
    }
    default:
      throw new InvalidInputError(`unknown backend "${String(name)}" (supported: ${BACKEND_NAMES.join(", ")})`);
  }
}
