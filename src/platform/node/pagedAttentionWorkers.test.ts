/**
 * The wasm paged attention split across two threads (Node workers, relaxed
 * SIMD): the shared suite and the engine-shaped cases, whose long ragged
 * decodes are split along keys and reduced (wasm/pagedAttentionPlan.ts),
 * alone and side by side with other sequences of the step.
 */
import { runPagedAttentionConformance } from "../../backends/cpu/pagedAttention.conformance.js";
import { runWasmPagedAttentionCases } from "../../backends/cpu/wasm/pagedAttentionCases.js";
import { createNodeWasmKernels } from "./kernelWorkers.js";

const create = () => createNodeWasmKernels({ numThreads: 2, initialBytes: 1 << 20, variant: "relaxed" });
runPagedAttentionConformance("wasm relaxed SIMD, 2 threads", create);
runWasmPagedAttentionCases("wasm relaxed SIMD, 2 threads", create);
