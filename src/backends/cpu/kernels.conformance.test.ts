/**
 * The kernel suites (kernels.conformance.ts, lightOps.conformance.ts) on
 * the reference kernels (memory guarantees; matmul against itself) and the
 * wasm kernels' baseline build on one thread.
 */
import { createReferenceKernels } from "./referenceKernels.js";
import { runKernelConformance } from "./kernels.conformance.js";
import { runLightOpConformance } from "./lightOps.conformance.js";
import { createWasmKernels } from "./wasm/wasmKernels.js";

// The relaxed-SIMD build runs in platform/node/kernelWorkers.test.ts, where Node enables it.
const baseline = () => createWasmKernels({ numThreads: 1, variant: "baseline" });
runKernelConformance("reference", async () => createReferenceKernels());
runKernelConformance("wasm SIMD, 1 thread", baseline);
runLightOpConformance("wasm SIMD, 1 thread", baseline);
