/**
 * The WebGPU backend's attention kernels (kernels/attentionKernels.ts and
 * the team-per-key decode kernel, kernels/decodeAttentionKernel.ts) against
 * the dense f64 reference on f16 pages: head dims 16 and 64, GQA groups 1
 * and 4, the team kernel; split-K items few and many. The two-pass decode kernel:
 * webgpuTwoPass.test.ts and webgpuTwoPassBf16.test.ts.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";

// NOTE: one file per page dtype, each within the runner's time limit with a cold shader cache (lavapipe
// takes 10-40 s to compile a decode kernel); variants that compile a kernel of their own run for one dtype each.
// The team kernel is named (twoPass false): GPUs run the two-pass kernel by default.
const TEAMS = { decodeAttentionTwoPass: false };
testAttentionVariants("attention variants", { f16: { shapes: [[16, 2], [64, 8]], variants: [TEAMS] } }, 310);
