/**
 * The wasm paged attention (assembly/pagedAttention.ts) on one thread against
 * the literal reference: the shared suite, plus the chunk sizes and ragged
 * heads the engine's prefill and decode produce (pagedAttentionCases.ts).
 * The same runs on two threads in platform/node/pagedAttentionWorkers.test.ts.
 */
import { createWasmKernels } from "./wasmKernels.js";
import { runPagedAttentionConformance } from "../pagedAttention.conformance.js";
import { runWasmPagedAttentionCases } from "./pagedAttentionCases.js";

const create = () => createWasmKernels({ numThreads: 1, initialBytes: 1 << 20, variant: "baseline" });
runPagedAttentionConformance("wasm SIMD, 1 thread", create);
runWasmPagedAttentionCases("wasm SIMD, 1 thread", create);
