/**
 * @module backends/webgpu/kernels/matmulSgKernels
 *
 * Prefill matmul on tensor cores through `chromium-experimental-subgroup-matrix`
 * (f16 x f16 -> f32 fragments of 16 x 16 x 16): the matmulKernels.ts contract
 * (args rows, Np, K, hasBias, Nout, n0) with a looser tolerance.
 *
 * A workgroup is one subgroup and takes a BM x BN output tile, BM/16 x
 * BN/16 fragments: Tint wants the pointer and offset of subgroup-matrix
 * loads and stores uniform, and a subgroup's index within a larger
 * workgroup is not. Per BK-deep slice, x (f32) and w (bf16 or f32) are
 * converted to f16 into workgroup memory (vec4 loads where K allows): x
 * row-major [m][k], w as stored [n][k], which is B = w^T read column-major.
 * Products accumulate in f32 fragments, stored through workgroup memory
 * (bounds and bias) at the end.
 *
 * Precision: each input is rounded once to f16 (relative 2^-11; bf16 weights
 * lose nothing in the mantissa, f16 having 3 bits more, but values beyond
 * f16's range are clamped to +-65504 and magnitudes below 2^-24 flush to 0;
 * NaN stays NaN); sums are f32. The error is bounded by ~2^-10 sum |x||w|,
 * the suite allows 4e-3 of the largest output; engine logits stay within the
 * fixtures' 1e-3 relative L2 (checked on the H200).
 *
 * Needs subgroups of exactly `sgSize` invocations made of consecutive
 * invocation indices (NVIDIA: 32).
 */
import type { Kernel } from "../gpuRuntime.js";
import { MATMUL_BINDINGS, matmulKernelOf, weightAt, type WeightType } from "./matmulKernels.js";
import { MAIN_ARGS, WG_INDEX, memoKernel } from "./wgslCommon.js";

export interface SgMatrixVariant {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
}

export const DEFAULT_SG_MATRIX: SgMatrixVariant = { bm: 64, bn: 64, bk: 32 };

/** Whether the vec4 tile fills apply: whole vec4s of x (4 f32) and of w (8 bf16 or 4 f32) along K. */
export function sgMatrixVectorised(wType: WeightType, K: number): boolean {
  return K % (wType === "bf16" ? 8 : 4) === 0;
}

/** How this Dawn spells subgroup-matrix loads and stores (older Tint: a bool column-major argument). */
export type SgMatrixSyntax = "new" | "legacy";

/** WGSL that checks which syntax compiles. */
export const SG_MATRIX_SYNTAX_PROBE = `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(32) fn main() { let m = subgroupMatrixLoad<subgroup_matrix_result<f32, 8, 8>, row_major>(&v, 0u, 8u); subgroupMatrixStore<row_major>(&v, 64u, m, 8u); }`;

export const sgMatrixMatmulKernel = memoKernel(function sgMatrixMatmulKernel(wType: WeightType, v: SgMatrixVariant, syntax: SgMatrixSyntax, sgSize: number, vectorised: boolean): Kernel {
  const { bm: BM, bn: BN, bk: BK } = v;
  const FM = BM / 16, FN = BN / 16;
  const NT = sgSize;
  const load = (type: string, p: string, off: string, colMajor: boolean) =>
    syntax === "new" ? `subgroupMatrixLoad<${type}, ${colMajor ? "col_major" : "row_major"}>(${p}, ${off}, ${BK}u)` : `subgroupMatrixLoad<${type}>(${p}, ${off}, ${colMajor}, ${BK}u)`;
  const store = (value: string) => (syntax === "new" ? `subgroupMatrixStore<row_major>(&cs, 0u, ${value}, 16u)` : `subgroupMatrixStore(&cs, 0u, ${value}, false, 16u)`);
  const frags: [number, number][] = [];
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) frags.push([i, j]);
  const wPer = wType === "bf16" ? 8 : 4; // weights per vec4 load
  // ---- one BK-deep slice of x and w into workgroup memory as f16
  const fill = vectorised
    ? `    for (var e = lid; e < ${(BM * BK) / 4}u; e += ${NT}u) {
      let mm = e / ${BK / 4}u; let kk = (e % ${BK / 4}u) * 4u;
      var xv = vec4<f32>(0.0);
      if (m0 + mm < rows && k0 + kk < K) { xv = x[((m0 + mm) * K + k0 + kk) / 4u]; }
      let at = mm * ${BK}u + kk;
      as_[at] = toF16(xv.x); as_[at + 1u] = toF16(xv.y); as_[at + 2u] = toF16(xv.z); as_[at + 3u] = toF16(xv.w);
    }
    for (var e = lid; e < ${(BN * BK) / wPer}u; e += ${NT}u) {
      let nn = e / ${BK / wPer}u; let kk = (e % ${BK / wPer}u) * ${wPer}u;
      let ok = c0 + nn < Np && k0 + kk < K;
      let at = nn * ${BK}u + kk;
${
  wType === "bf16"
    ? `      var wv = vec4<u32>(0u);
      if (ok) { wv = w[((c0 + nn) * K + k0 + kk) / 8u]; }
      bs[at] = toF16(bitcast<f32>(wv.x << 16u)); bs[at + 1u] = toF16(bitcast<f32>(wv.x & 0xffff0000u));
      bs[at + 2u] = toF16(bitcast<f32>(wv.y << 16u)); bs[at + 3u] = toF16(bitcast<f32>(wv.y & 0xffff0000u));
      bs[at + 4u] = toF16(bitcast<f32>(wv.z << 16u)); bs[at + 5u] = toF16(bitcast<f32>(wv.z & 0xffff0000u));
      bs[at + 6u] = toF16(bitcast<f32>(wv.w << 16u)); bs[at + 7u] = toF16(bitcast<f32>(wv.w & 0xffff0000u));`
    : `      var wv = vec4<f32>(0.0);
      if (ok) { wv = w[((c0 + nn) * K + k0 + kk) / 4u]; }
      bs[at] = toF16(wv.x); bs[at + 1u] = toF16(wv.y); bs[at + 2u] = toF16(wv.z); bs[at + 3u] = toF16(wv.w);`
}
    }`
    : `    for (var e = lid; e < ${BM * BK}u; e += ${NT}u) {
      let mm = e / ${BK}u; let kk = e % ${BK}u;
      as_[e] = toF16(select(0.0, x[(m0 + mm) * K + k0 + kk], m0 + mm < rows && k0 + kk < K));
    }
    for (var e = lid; e < ${BN * BK}u; e += ${NT}u) {
      let nn = e / ${BK}u; let kk = e % ${BK}u;
      bs[e] = toF16(select(0.0, wAt((c0 + nn) * K + k0 + kk), c0 + nn < Np && k0 + kk < K));
    }`;
  const arrays = vectorised ? [wType === "bf16" ? "array<vec4<u32>>" : "array<vec4<f32>>", "array<vec4<f32>>"] : ["array<u32>", "array<f32>"];
  return matmulKernelOf(`matmul sgmatrix ${wType} ${BM}x${BN}x${BK}${vectorised ? " vec4" : ""}`, /* wgsl */ `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
${MATMUL_BINDINGS(arrays[0], arrays[1])}
${vectorised ? "" : weightAt(wType)}
var<workgroup> as_: array<f16, ${BM * BK}>;
var<workgroup> bs: array<f16, ${BN * BK}>;
var<workgroup> cs: array<f32, 256>;
// NOTE: clamped, as f16(x) of a finite x beyond 65504 is not defined to saturate
fn toF16(x: f32) -> f16 { return f16(clamp(x, -65504.0, 65504.0)); }
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let rows = au(0u); let Np = au(1u); let K = au(2u); let Nout = au(4u); let n0 = au(5u);
  let tn = (Np + ${BN - 1}u) / ${BN}u;
  let m0 = (wg / tn) * ${BM}u; let c0 = (wg % tn) * ${BN}u;
${frags.map(([i, j]) => `  var c${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join("\n")}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
${fill}
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk += 16u) {
${Array.from({ length: FM }, (_, i) => `      let a${i} = ${load("subgroup_matrix_left<f16, 16, 16>", "&as_", `${i * 16 * BK}u + kk`, false)};`).join("\n")}
${Array.from({ length: FN }, (_, j) => `      let b${j} = ${load("subgroup_matrix_right<f16, 16, 16>", "&bs", `${j * 16 * BK}u + kk`, true)};`).join("\n")}
${frags.map(([i, j]) => `      c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`).join("\n")}
    }
    workgroupBarrier();
  }
  let hasBias = au(3u) == 1u;
${frags
  .map(
    ([i, j]) => `  ${store(`c${i}_${j}`)};
  workgroupBarrier();
  for (var e = lid; e < 256u; e += ${NT}u) {
    let m = m0 + ${i * 16}u + e / 16u; let n = c0 + ${j * 16}u + e % 16u;
    if (m < rows && n < Np) { outp[m * Nout + n0 + n] = cs[e] + select(0.0, bias[n0 + n], hasBias); }
  }
  workgroupBarrier();`,
  )
  .join("\n")}
}`);
});
