/**
 * @module backends/webgpu/kernelVariants
 *
 * The kernel variants the WebGPU backend can run for each op, as
 * benchmarks compare them (scripts/device/kernel-bench.mjs, matmul-bench.mjs) and the tests
 * check them (webgpuMatmul.test.ts). The backend's defaults
 * (kernelChoice.ts defaultKernels) are picked from these by what the H200
 * measured (docs/design.md §6).
 */
import type { MatvecVariant, TiledVariant } from "./kernels/matmulKernels.js";
import type { SgMatrixVariant } from "./kernels/matmulSgKernels.js";

export const MATVEC_VARIANTS: readonly MatvecVariant[] = [
  { tpr: 64, unroll: 1, subgroups: false },
  { tpr: 64, unroll: 2, subgroups: false },
  { tpr: 32, unroll: 4, subgroups: false },
  { tpr: 32, unroll: 1, subgroups: true },
  { tpr: 32, unroll: 2, subgroups: true },
  { tpr: 32, unroll: 4, subgroups: true },
  { tpr: 64, unroll: 4, subgroups: true },
  { tpr: 128, unroll: 2, subgroups: true },
  { tpr: 32, unroll: 8, subgroups: true },
  { tpr: 64, unroll: 2, subgroups: true },
  { tpr: 128, unroll: 4, subgroups: true },
  { tpr: 256, unroll: 2, subgroups: true },
  // NOTE: several output rows per team: each x load serves them all
  { tpr: 32, unroll: 2, subgroups: true, outRows: 2 },
  { tpr: 32, unroll: 1, subgroups: true, outRows: 4 },
  { tpr: 64, unroll: 2, subgroups: true, outRows: 3 },
];

export const TILED_VARIANTS: readonly TiledVariant[] = [
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 },
  { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
];

// NOTE: the first five are one subgroup per workgroup (any compiler); the rest need per-subgroup operands
export const SG_MATRIX_VARIANTS: readonly SgMatrixVariant[] = [
  { bm: 64, bn: 64, bk: 32 },
  { bm: 64, bn: 64, bk: 64 },
  { bm: 32, bn: 64, bk: 64 },
  { bm: 64, bn: 32, bk: 64 },
  { bm: 32, bn: 32, bk: 64 },
  { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 },
  { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 2 },
  { bm: 128, bn: 128, bk: 16, sgm: 2, sgn: 2, pad: 8 },
  { bm: 128, bn: 64, bk: 32, sgm: 2, sgn: 2, pad: 8 },
  { bm: 64, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 },
  { bm: 64, bn: 64, bk: 32, sgm: 2, sgn: 2, pad: 8 },
  { bm: 128, bn: 256, bk: 32, sgm: 2, sgn: 4, pad: 8 },
  { bm: 256, bn: 128, bk: 32, sgm: 4, sgn: 2, pad: 8 },
  { bm: 128, bn: 128, bk: 64, sgm: 2, sgn: 2, pad: 8 },
  { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8, buffers: 2 },
  { bm: 64, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8, buffers: 2 },
];
