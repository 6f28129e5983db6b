/**
 * The WebGPU backend's attention kernels (kernels/attentionKernels.ts and
 * the team-per-key decode kernel, kernels/decodeAttentionKernel.ts) against
 * the dense f64 reference on bf16 pages: head dims 64 and 128, the
 * variants a benchmark may choose (2 and 4 keys per team and step, 16 lanes
 * per key where subgroups hold them, few and many split-K items). The two-pass decode kernel:
 * webgpuTwoPass.test.ts and webgpuTwoPassBf16.test.ts.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";

// NOTE: one file per page dtype, each within the runner's time limit with a cold shader cache (lavapipe
// takes 10-40 s to compile a decode kernel); variants that compile a kernel of their own run for one dtype each.
// The team kernel is named (twoPass false): GPUs run the two-pass kernel by default.
const TEAMS = { decodeAttentionTwoPass: false };
// NOTE: head dim 128: on lavapipe the tiled kernel's tiles shrink to 8 keys and the decode kernels stand aside; GPUs run them
testAttentionVariants("attention variants", {
  bf16: { shapes: [[64, 8], [128, 2]], variants: [{ ...TEAMS, decodeAttentionUnroll: 4 }, { ...TEAMS, decodeAttentionUnroll: 4, attentionItems: 64 }, { ...TEAMS, decodeAttentionLanes: 16 }] },
}, 320);
