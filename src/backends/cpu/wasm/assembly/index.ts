// Entry point of the CPU kernels module (compiled by scripts/build-wasm.mjs).
// Every export works on byte offsets into the imported shared memory and
// computes one thread's share of a call; the host splits the work.
export { matmulF32, matmulBf16 } from "./matmul";
export { pagedAttentionTask, pagedAttentionScratchBytes } from "./pagedAttention";
export { pagedAttentionReduce } from "./pagedReduce";
export { rmsNormRows, siluMulRange, addRange, ropeRows } from "./elementwise";
export { gateScoresTask, gateScratchBytes } from "./gate";
export { writeSlots } from "./kvWrite";
