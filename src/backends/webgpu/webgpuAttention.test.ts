/**
 * The WebGPU backend's attention kernels (kernels/attentionKernels.ts and
 * the team-per-key decode kernel, kernels/decodeAttentionKernel.ts) against
 * the dense f64 reference: every page dtype, head dims that reach the decode
 * kernel's vec4 slices (64, 128) and one that does not (16), GQA groups 1
 * and 4; the variants a benchmark may choose (the team kernel on and off, 2
 * and 4 keys per team and step, 16 lanes per key where subgroups hold them,
 * few and many split-K items) within the suite's tolerance. The two-pass
 * decode kernel: webgpuTwoPass.test.ts and webgpuTwoPassBf16.test.ts.
 */
import { testAttentionVariants } from "../../testing/webgpuAttentionVariants.js";

// NOTE: one test per page dtype, each within the runner's time limit with a cold shader cache (lavapipe
// takes 10-40 s to compile a decode kernel); variants that compile a kernel of their own run for one dtype each.
// The team kernel is named (twoPass false): GPUs run the two-pass kernel by default.
const TEAMS = { decodeAttentionTwoPass: false };
testAttentionVariants("attention variants", {
  f32: { shapes: [[16, 2], [64, 8]], variants: [{ decodeAttentionSubgroup: 0 }, TEAMS] },
  f16: { shapes: [[16, 2], [64, 8]], variants: [TEAMS] },
  // head dim 128: on lavapipe the tiled kernel's tiles shrink to 8 keys and the decode kernels stand aside; GPUs run them
  bf16: { shapes: [[64, 8], [128, 2]], variants: [{ ...TEAMS, decodeAttentionUnroll: 4 }, { ...TEAMS, decodeAttentionUnroll: 4, attentionItems: 64 }, { ...TEAMS, decodeAttentionLanes: 16 }] },
}, 300);
