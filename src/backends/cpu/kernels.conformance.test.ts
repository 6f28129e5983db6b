import { createReferenceKernels } from "./referenceKernels.js";
import { runKernelConformance } from "./kernels.conformance.js";
import { createWasmKernels } from "./wasm/wasmKernels.js";

runKernelConformance("reference", async () => createReferenceKernels());
runKernelConformance("wasm, 1 thread", () => createWasmKernels({ numThreads: 1 }));
