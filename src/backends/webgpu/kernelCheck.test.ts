/**
 * The creation-time check of the tensor-core attentions (kernelCheck.ts):
 * a kernel that agrees with the f32 one stays on; one that differs past the
 * bound is turned off, with a note saying why. Without tensor cores (CI's
 * lavapipe) the kernel runs emulated, at a small head dim.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";
import { checkKernels } from "./kernelCheck.js";

test("the tensor-core attention stays on where it agrees with the f32 kernel, and is turned off where it does not", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    if (!b.subgroupMatrixDialect) return assert.fail("the tests' WebGPU device has no shader-f16 (lavapipe has)");
    // NOTE: the backend's own choice, which its ops read while the check switches paths
    const kernels = Object.assign(b.kernels, { sgMatrix: null, sgAttentionKeys: 16, sgAttentionDirectKeys: 0 });
    assert.equal(await checkKernels(b, kernels, { headDims: [16] }), null);
    assert.equal(kernels.sgAttentionKeys, 16);
    // NOTE: f16 rounding differs from f32 by more than 0
    const note = await checkKernels(b, kernels, { headDims: [16], tolerance: 0 });
    assert.match(note ?? "", /^tensor-core attention off \(head dim 16: error \d\.\de-\d of the largest output\)$/);
    assert.equal(kernels.sgAttentionKeys, 0);
  } finally {
    b.dispose();
  }
});

test("the direct tensor-core attention (f16 pages) is checked the same way", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    if (!b.subgroupMatrixDialect) return assert.fail("the tests' WebGPU device has no shader-f16 (lavapipe has)");
    // NOTE: operands rounded once: the split kernel compiles for minutes emulated
    const kernels = Object.assign(b.kernels, { sgMatrix: null, sgAttentionKeys: 0, sgAttentionDirectKeys: 16, sgAttentionSplit: false });
    assert.equal(await checkKernels(b, kernels, { headDims: [16] }), null);
    assert.equal(kernels.sgAttentionDirectKeys, 16);
    const note = await checkKernels(b, kernels, { headDims: [16], tolerance: 0 });
    assert.match(note ?? "", /^direct tensor-core attention off \(head dim 16: error \d\.\de-\d of the largest output\)$/);
    assert.equal(kernels.sgAttentionDirectKeys, 0);
  } finally {
    b.dispose();
  }
});
