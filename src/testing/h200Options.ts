/**
 * @module testing/h200Options
 *
 * The WebGPU backend options an H200 gives through Dawn with the project's
 * toggles (f16, 32-wide subgroups, subgroup matrices with per-subgroup
 * operands): tests of what such a device runs by default, without one.
 */
import { SG_MATRIX_NONUNIFORM_DIRECTIVES } from "../backends/webgpu/kernels/sgMatrixWgsl.js";

export const H200_OPTIONS = {
  memoryBytes: 2 ** 37,
  adapterDescription: "nvidia",
  software: false,
  features: new Set(["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix"]),
  subgroupSizes: { min: 32, max: 32 },
  subgroupMatrix: { syntax: "new" as const, nonUniform: SG_MATRIX_NONUNIFORM_DIRECTIVES[0] },
};
