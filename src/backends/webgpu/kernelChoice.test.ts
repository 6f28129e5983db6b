/**
 * The kernels a device's features choose by default (kernelChoice.ts), and
 * which tensor-core tiles a matmul's grid takes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultKernels, sgMatrixTiles, TENSOR_CORE_SMALL_TILES, TENSOR_CORE_TILES } from "./kernelChoice.js";
import { H200_OPTIONS } from "../../testing/h200Options.js";

const H200 = H200_OPTIONS;

test("tensor cores with per-subgroup operands take the tensor-core matmul and the split tensor-core attention; without, the f32 paths", () => {
  const c = defaultKernels(H200);
  assert.deepEqual([c.sgMatrix, c.sgMatrixSmall, c.sgAttentionKeys, c.sgAttentionSplit], [TENSOR_CORE_TILES, TENSOR_CORE_SMALL_TILES, 32, true]);
  // NOTE: one subgroup per workgroup only (no directive lifts Tint's uniformity check), software adapters, no f16
  for (const options of [{ ...H200, subgroupMatrix: { syntax: "new" as const, nonUniform: "" } }, { ...H200, software: true, features: new Set(["shader-f16"]) }, { ...H200, features: new Set(["subgroups"]) }]) {
    const d = defaultKernels(options);
    assert.deepEqual([d.sgMatrix, d.sgMatrixSmall, d.sgAttentionKeys], [null, null, 0]);
  }
});

test("a matmul whose grid of large tiles is under two waves takes the small tiles", () => {
  const c = defaultKernels(H200);
  // NOTE: 8B shapes: k/v (N 1024) and q/o (N 4096) at 512 rows are 32 and 128 workgroups of 128 x 128; gate/up (N 14336) 448
  assert.equal(sgMatrixTiles(c, 512, 1024), TENSOR_CORE_SMALL_TILES);
  assert.equal(sgMatrixTiles(c, 512, 4096), TENSOR_CORE_SMALL_TILES);
  assert.equal(sgMatrixTiles(c, 512, 14336), TENSOR_CORE_TILES);
  assert.equal(sgMatrixTiles(c, 2048, 4096), TENSOR_CORE_TILES);
  assert.equal(sgMatrixTiles({ ...c, sgMatrixSmall: null }, 512, 1024), TENSOR_CORE_TILES);
});
