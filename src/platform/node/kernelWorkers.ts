/**
 * @module platform/node/kernelWorkers
 *
 * Node's side of the wasm CPU kernels: worker threads from node:worker_threads.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { CpuKernels } from "../../backends/cpu/kernels.js";
import type { PagedAttentionKernel } from "../../backends/cpu/pagedAttention.js";
import type { KernelWorkerFactory, KernelWorkerInit } from "../../backends/cpu/wasm/threadPool.js";
import { createWasmKernels, type WasmKernelsOptions } from "../../backends/cpu/wasm/wasmKernels.js";

const ENTRY = new URL("./kernelWorkerEntry.js", import.meta.url);

/**
 * Starts one kernel worker. It is unref()'d: a kernels instance that is never
 * disposed does not keep the process alive.
 */
export const nodeKernelWorkerFactory: KernelWorkerFactory = (init: KernelWorkerInit) => {
  // NOTE: --input-type (node -e) is inherited by default yet refused for a file entry.
  const execArgv = process.execArgv.filter((arg) => !arg.startsWith("--input-type"));
  const worker = new Worker(ENTRY, { workerData: init, name: `wgkv-kernels-${init.index}`, execArgv });
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

/** The wasm kernels on Node, split across numThreads (default: the number of cores). */
export function createNodeWasmKernels(options: Omit<WasmKernelsOptions, "workerFactory"> = {}): Promise<CpuKernels & PagedAttentionKernel> {
  return createWasmKernels({ ...options, numThreads: options.numThreads ?? availableParallelism(), workerFactory: nodeKernelWorkerFactory });
}
