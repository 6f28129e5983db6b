// Entry point of the gate trainer's kernels (compiled by scripts/build-wasm.mjs
// into src/train/wasm/trainWasm.generated.ts). The forward kernels are the CPU
// backend's own (same sources); the rest are the training passes. Pointers are
// byte offsets into the imported memory; every call runs on the calling thread.
export { matmulF32, matmulBf16 } from "../../../backends/cpu/wasm/assembly/matmul";
export { rmsNormRows, siluMulRange, addRange, ropeRows } from "../../../backends/cpu/wasm/assembly/elementwise";
export { attnSoftmaxRows, attnProbsRows, attnScoreGradRows, transpose } from "./attention";
export { gemmNN, gemmTN } from "./gemm";
export { rmsNormBackwardRows, siluMulBackwardRange, geluRange, geluBackwardRange, axpyRange } from "./pointwise";

/** The first byte above the module's static data (math tables): the host's allocator starts there. */
export function heapBase(): usize {
  return __heap_base;
}
