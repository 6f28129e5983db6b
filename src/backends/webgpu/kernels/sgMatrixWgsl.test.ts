/**
 * The subgroup-matrix dialects as text (the kernels built on them are run
 * against references in webgpuMatmul.test.ts and webgpuAttentionSg.test.ts):
 * each real syntax's spelling, the emulation's helpers, and the kernels'
 * refusal of several subgroups where no directive allows them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SgMatrixWgsl, SG_MATRIX_NONUNIFORM_DIRECTIVES, sgMatrixNonUniformProbe } from "./sgMatrixWgsl.js";
import { sgMatrixMatmulKernel, sgMatrixSharedBytes } from "./matmulSgKernels.js";
import { sgAttentionKernel, sgAttentionSharedBytes } from "./attentionSgKernel.js";
import { moduleSource } from "../kernelAbi.js";
import { SG_MATRIX_VARIANTS } from "../kernelVariants.js";

test("each dialect spells loads, stores and products its own way; the emulation brings its helpers", () => {
  const neu = new SgMatrixWgsl("new"), legacy = new SgMatrixWgsl("legacy"), emu = new SgMatrixWgsl("emulated");
  assert.equal(neu.load("right", "bs", "8u", true, "40u"), "subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&bs, 8u, 40u)");
  assert.equal(legacy.load("left", "as_", "0u", false, "40u"), "subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&as_, 0u, false, 40u)");
  assert.equal(legacy.store("cs", "0u", "c", "16u"), "subgroupMatrixStore(&cs, 0u, c, false, 16u)");
  assert.equal(neu.helpers(), "");
  assert.equal(emu.load("left", "as_", "0u", false, "40u"), "emuLoad_as_(0u, 40u, false)");
  assert.equal(emu.mma("a", "b", "c"), "emuMma(a, b, c)");
  assert.match(emu.helpers(), /fn emuLoad_as_\(/);
  assert.match(emu.helpers(), /fn emuMma\(/);
  assert.doesNotMatch(emu.enables("ignored"), /subgroup_matrix|ignored/);
  for (const d of SG_MATRIX_NONUNIFORM_DIRECTIVES) assert.ok(sgMatrixNonUniformProbe("new", d).includes(d));
});

test("several subgroups per workgroup need a directive: kernels refuse without one and carry it with one", () => {
  const v = { bm: 64, bn: 64, bk: 32, sgm: 2, sgn: 2 };
  assert.throws(() => sgMatrixMatmulKernel("bf16", v, { syntax: "new", nonUniform: "" }, true), /one subgroup per workgroup only/);
  const directive = SG_MATRIX_NONUNIFORM_DIRECTIVES[0];
  const kernel = sgMatrixMatmulKernel("bf16", v, { syntax: "new", nonUniform: directive }, true);
  // NOTE: WGSL wants directives before every declaration, the arguments' the runtime adds included
  const source = moduleSource(kernel);
  assert.ok(source.indexOf(directive) >= 0 && source.indexOf(directive) < source.indexOf("var<"), "the directive leads the module");
  // NOTE: one subgroup needs none (its index is the constant 0)
  assert.doesNotMatch(sgMatrixMatmulKernel("bf16", { bm: 64, bn: 64, bk: 32 }, { syntax: "new", nonUniform: directive }, true).code, /diagnostic/);
  assert.throws(() => sgMatrixMatmulKernel("bf16", { bm: 64, bn: 40, bk: 32 }, { syntax: "emulated", nonUniform: "" }, true), /not whole 16 x 16 fragments/);
  const shape = { headDim: 128, group: 4, kvDType: "bf16" as const, stepKeys: 32, split: false };
  assert.throws(() => sgAttentionKernel(shape, { syntax: "new", nonUniform: "" }), /one subgroup per workgroup only/);
  assert.throws(() => sgAttentionKernel({ ...shape, headDim: 72 }, { syntax: "emulated", nonUniform: "" }), /do not fit/);
  // NOTE: the declared workgroup arrays, as the backend counts them before choosing the kernel
  for (const s of [shape, { ...shape, stepKeys: 16, split: true }]) {
    const declared = workgroupArrayBytes(sgAttentionKernel(s, { syntax: "new", nonUniform: directive }).code);
    assert.equal(declared.reduce((sum, bytes) => sum + bytes, 0), sgAttentionSharedBytes(128, s.stepKeys, s.split));
  }
});

/** Bytes of each workgroup variable of a kernel (all arrays of f16, f32 or u32). */
function workgroupArrayBytes(code: string): number[] {
  const declared = [...code.matchAll(/var<workgroup> \w+: array<(f16|f32|u32), (\d+)>;/g)].map((m) => (m[1] === "f16" ? 2 : 4) * Number(m[2]));
  assert.equal(declared.length, code.match(/var<workgroup>/g)?.length, "every workgroup variable is an array");
  return declared;
}

test("every workgroup variable of the tensor-core kernels is a multiple of 16 bytes, whatever order the driver lays them out in", () => {
  // NOTE: the H200's driver gave garbage and NaN from the attention while one was a lone u32 (emulated it was right)
  const dialect = { syntax: "new" as const, nonUniform: SG_MATRIX_NONUNIFORM_DIRECTIVES[0] };
  const kernels = [
    ...SG_MATRIX_VARIANTS.flatMap((v) => [sgMatrixMatmulKernel("bf16", v, dialect, true), sgMatrixMatmulKernel("f32", v, dialect, false), sgMatrixMatmulKernel("f32", v, dialect, true, true)]),
    ...[16, 64, 128].flatMap((headDim) => [16, 32].flatMap((stepKeys) => [false, true].map((split) => sgAttentionKernel({ headDim, group: 4, kvDType: "f16", stepKeys, split }, dialect)))),
  ];
  for (const k of kernels) assert.deepEqual(workgroupArrayBytes(k.code).filter((bytes) => bytes % 16 !== 0), [], k.label);
});

test("the tensor-core matmul's workgroup memory is what the check at creation counts", () => {
  const dialect = { syntax: "new" as const, nonUniform: SG_MATRIX_NONUNIFORM_DIRECTIVES[0] };
  for (const v of SG_MATRIX_VARIANTS) {
    for (const [wType, vectorised, split] of [["bf16", true, false], ["f32", false, false], ["f32", true, true], ["bf16", true, true]] as const) {
      const declared = workgroupArrayBytes(sgMatrixMatmulKernel(wType, v, dialect, vectorised, split).code).reduce((sum, bytes) => sum + bytes, 0);
      assert.equal(sgMatrixSharedBytes(wType, v, vectorised, split), declared, `${JSON.stringify(v)} ${wType} vec4 ${vectorised} split ${split}`);
    }
  }
});
