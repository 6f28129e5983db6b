/**
 * @module platform/node/kernelWorkerEntry
 *
 * Entry of a Node kernel worker (started by kernelWorkers.ts): instantiates
 * the kernels on the shared memory, reports ready, then serves kernel calls
 * from the control block until told to quit.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runKernelWorkerLoop, type KernelWorkerInit } from "../../backends/cpu/wasm/threadPool.js";
import { instantiateKernels } from "../../backends/cpu/wasm/wasmModule.js";

const init = workerData as KernelWorkerInit;
const exports = await instantiateKernels(init.module, init.memory);
parentPort!.postMessage("ready");
runKernelWorkerLoop(exports, init.control, init.index);
