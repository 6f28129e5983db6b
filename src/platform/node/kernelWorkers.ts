/**
 * @module platform/node/kernelWorkers
 *
 * Node's side of the wasm CPU kernels: worker threads from node:worker_threads.
 */
import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import type { CpuKernels } from "../../backends/cpu/kernels.js";
import type { PagedAttentionKernel } from "../../backends/cpu/pagedAttention.js";
import type { KernelWorkerFactory, KernelWorkerInit } from "../../backends/cpu/wasm/threadPool.js";
import { createWasmKernels, type WasmKernelsOptions } from "../../backends/cpu/wasm/wasmKernels.js";
import { supportsRelaxedSimd } from "../../backends/cpu/wasm/wasmModule.js";

const ENTRY = new URL("./kernelWorkerEntry.js", import.meta.url);

/**
 * Starts one kernel worker. It is unref()'d: a kernels instance that is never
 * disposed does not keep the process alive.
 */
export const nodeKernelWorkerFactory: KernelWorkerFactory = (init: KernelWorkerInit) => {
  // NOTE: --input-type (node -e) is inherited by default yet refused for a file entry.
  const execArgv = process.execArgv.filter((arg) => !arg.startsWith("--input-type"));
  let worker: Worker;
  try {
    worker = new Worker(ENTRY, { workerData: init, name: `wgkv-kernels-${init.index}`, execArgv });
  } catch (err) {
    // NOTE: flags a worker may not take (--max-old-space-size and other per-process ones) are refused
    // outright; the kernels need none of the parent's flags, V8's are shared already
    if ((err as NodeJS.ErrnoException).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw err;
    worker = new Worker(ENTRY, { workerData: init, name: `wgkv-kernels-${init.index}`, execArgv: [] });
  }
  worker.unref();
  const ready = new Promise<void>((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`kernel worker ${init.index} exited with code ${code} before it was ready`));
    worker.once("error", reject);
    worker.once("exit", onExit);
    worker.once("message", () => {
      worker.off("error", reject);
      worker.off("exit", onExit);
      resolve();
    });
  });
  return { ready, terminate: () => void worker.terminate() };
};

/**
 * Node 20 ships relaxed SIMD behind a V8 flag (on by default from Node 22).
 * Wasm features are read when a module is compiled, so setting the flag
 * before the first compile turns it on for this process and its workers.
 */
function enableRelaxedSimd(): void {
  if (!supportsRelaxedSimd()) setFlagsFromString("--experimental-wasm-relaxed-simd");
}

/** The wasm kernels on Node, split across numThreads (default: the number of cores). */
export function createNodeWasmKernels(options: Omit<WasmKernelsOptions, "workerFactory"> = {}): Promise<CpuKernels & PagedAttentionKernel> {
  if (options.variant !== "baseline") enableRelaxedSimd();
  return createWasmKernels({ ...options, numThreads: options.numThreads ?? availableParallelism(), workerFactory: nodeKernelWorkerFactory });
}
