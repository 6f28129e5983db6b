/**
 * @module platform/node/backend
 *
 * Chooses and builds a backend in Node.js.
 */
import { freemem } from "node:os";
import type { Backend } from "../../backends/backend.js";
import { CpuBackend } from "../../backends/cpu/cpuBackend.js";
import { createReferenceKernels } from "../../backends/cpu/referenceKernels.js";
import type { CpuKernels } from "../../backends/cpu/kernels.js";
import { WasmKernelsUnsupportedError, type KernelVariant } from "../../backends/cpu/wasm/wasmModule.js";
import { InvalidInputError, shownValue, WgkvError } from "../../errors.js";

/**
 * "cpu": WebAssembly SIMD kernels on worker threads; "cpu-reference": plain loops, one thread;
 * "webgpu": the GPU through the `webgpu` package (software adapters too); "auto": a real GPU when
 * one is found, else "cpu".
 */
export type BackendName = "auto" | "webgpu" | "cpu" | "cpu-reference";
export const BACKEND_NAMES: readonly BackendName[] = ["auto", "webgpu", "cpu", "cpu-reference"];

/** Which build of the wasm kernels "cpu" runs (see backends/cpu/wasm/wasmModule.ts). */
export type SimdBuild = KernelVariant | "auto";
export const SIMD_BUILDS: readonly SimdBuild[] = ["auto", "relaxed", "baseline"];

export interface BackendOptions {
  readonly backend?: BackendName;
  /** Threads for the CPU kernels (default: all cores). */
  readonly threads?: number;
  /** Kernel build for "cpu" (default "auto": relaxed SIMD where the runtime has it). */
  readonly simd?: SimdBuild;
  /** WebGPU features not to use where the adapter has them (tests of the paths without them). */
  readonly disableGpuFeatures?: readonly string[];
  /** Receives one-line warnings (default: stderr), e.g. when the SIMD kernels cannot start. */
  readonly onWarning?: (message: string) => void;
}

/** The backend asked for cannot run in this runtime. */
export class BackendUnavailableError extends WgkvError {
  override readonly name = "BackendUnavailableError";
}

export async function createBackend(options: BackendOptions = {}): Promise<Backend> {
  const name = options.backend ?? "cpu";
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new InvalidInputError(`threads must be a positive integer, got ${shownValue(options.threads)}`);
  }
  if (options.simd !== undefined && !SIMD_BUILDS.includes(options.simd)) throw new InvalidInputError(`simd must be one of ${SIMD_BUILDS.join(", ")}, got ${shownValue(options.simd)}`);
  switch (name) {
    case "cpu-reference":
      return new CpuBackend(createReferenceKernels(), "cpu-reference", freemem);
    case "cpu": {
      const { createNodeWasmKernels } = await import("./kernelWorkers.js");
      return createCpuBackend(() => createNodeWasmKernels({ numThreads: options.threads, variant: options.simd }), options);
    }
    case "webgpu":
    case "auto": {
      const { createNodeWebGpuBackend, mayHaveHardwareGpu, WebGpuUnavailableError } = await import("./webgpu.js");
      if (name === "auto" && !mayHaveHardwareGpu()) return createBackend({ ...options, backend: "cpu" });
      let backend;
      try {
        backend = await createNodeWebGpuBackend({ requireHardware: name === "auto", disableFeatures: options.disableGpuFeatures });
      } catch (err) {
        if (!(err instanceof WebGpuUnavailableError)) throw err;
        if (name === "webgpu") throw new BackendUnavailableError(`backend webgpu: ${err.message}`);
        return createBackend({ ...options, backend: "cpu" });
      }
      if (backend.software) {
        const adapter = backend.description.split(";")[0].replace(/^WebGPU /, "").replace(/ \(software\)$/, "");
        warnOf(options)(`backend webgpu runs on a software renderer (${adapter}): no GPU was found, and it is far slower than the cpu backend`);
      }
      return backend;
    }
    default:
      throw new InvalidInputError(`unknown backend "${String(name)}" (supported: ${BACKEND_NAMES.join(", ")})`);
  }
}

/**
 * The CPU backend on the wasm kernels; where the runtime cannot run them (no
 * WebAssembly SIMD, threads or SharedArrayBuffer), the reference kernels with
 * a one-line warning, unless a SIMD build was asked for by name.
 */
export async function createCpuBackend(createKernels: () => Promise<CpuKernels>, options: BackendOptions = {}): Promise<CpuBackend> {
  try {
    return new CpuBackend(await createKernels(), "cpu", freemem);
  } catch (err) {
    if (!(err instanceof WasmKernelsUnsupportedError)) throw err;
    if (options.simd !== undefined && options.simd !== "auto") throw new BackendUnavailableError(`--simd ${options.simd}: ${err.message}`);
    warnOf(options)(`${err.message}; running on the TypeScript reference kernels instead (much slower)`);
    return new CpuBackend(createReferenceKernels(), "cpu-reference", freemem);
  }
}

/** Where one-line warnings go: the caller's hook, else stderr. */
function warnOf(options: BackendOptions): (message: string) => void {
  return options.onWarning ?? ((m: string) => process.stderr.write(`wgkv: warning: ${m}\n`));
}
