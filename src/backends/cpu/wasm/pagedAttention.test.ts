/**
 * The wasm paged attention (assembly/pagedAttention.ts) on one thread
 * (baseline SIMD) against the literal reference: the shared suite, plus the
 * chunk sizes, steps and ragged heads the engine produces
 * (pagedAttentionCases.ts). The relaxed build on two threads, where calls
 * are split along keys and reduced, runs in
 * platform/node/pagedAttentionWorkers.test.ts.
 */
import { createWasmKernels } from "./wasmKernels.js";
import { runPagedAttentionConformance } from "../pagedAttention.conformance.js";
import { runWasmPagedAttentionCases } from "./pagedAttentionCases.js";

const create = () => createWasmKernels({ numThreads: 1, initialBytes: 1 << 20, variant: "baseline" });
runPagedAttentionConformance("wasm SIMD, 1 thread", create);
runWasmPagedAttentionCases("wasm SIMD, 1 thread", create);
