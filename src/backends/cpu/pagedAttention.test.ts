/**
 * Paged attention: the plain TypeScript kernel (pagedAttentionJs.ts, the
 * reference kernels' one) against the literal reference and the dense
 * visibility rule, in reference-kernel memory. A native kernel (WebAssembly)
 * runs the same suite through runPagedAttentionConformance.
 */
import { createReferenceKernels } from "./referenceKernels.js";
import { runPagedAttentionConformance, withJsPagedAttention } from "./pagedAttention.conformance.js";

runPagedAttentionConformance("jsPagedAttention", () => withJsPagedAttention(createReferenceKernels()));
