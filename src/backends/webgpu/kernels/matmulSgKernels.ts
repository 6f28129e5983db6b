/**
 * @module backends/webgpu/kernels/matmulSgKernels
 *
 * Prefill matmul on tensor cores through `chromium-experimental-subgroup-matrix`
 * (f16 x f16 -> f32 fragments of 16 x 16 x 16): the matmulKernels.ts contract
 * (args rows, Np, K, hasBias, Nout, n0) with a looser tolerance.
 *
 * A workgroup of SGM x SGN subgroups takes a BM x BN output tile; each
 * subgroup FM x FN fragments of it. Per BK-deep slice, x (f32) and w (bf16
 * or f32) are converted to f16 into workgroup memory: x row-major [m][k], w
 * as stored [n][k], which is B = w^T read column-major. Products accumulate
 * in f32 fragments, stored through workgroup memory (bounds and bias) at the
 * end.
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
  /** Subgroups along m and n. */
  readonly sgm: number;
  readonly sgn: number;
}

export const DEFAULT_SG_MATRIX: SgMatrixVariant = { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 4 };

/** How this Dawn spells subgroup-matrix loads and stores (older Tint: a bool column-major argument). */
export type SgMatrixSyntax = "new" | "legacy";

/** WGSL that checks which syntax compiles. */
export const SG_MATRIX_SYNTAX_PROBE = `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(32) fn main() { let m = subgroupMatrixLoad<subgroup_matrix_result<f32, 8, 8>, row_major>(&v, 0u, 8u); subgroupMatrixStore<row_major>(&v, 64u, m, 8u); }`;

export const sgMatrixMatmulKernel = memoKernel(function sgMatrixMatmulKernel(wType: WeightType, v: SgMatrixVariant, syntax: SgMatrixSyntax, sgSize: number): Kernel {
  const { bm: BM, bn: BN, bk: BK, sgm: SGM, sgn: SGN } = v;
  const FM = BM / (16 * SGM), FN = BN / (16 * SGN);
  const NSG = SGM * SGN, NT = NSG * sgSize;
  const load = (type: string, p: string, off: string, colMajor: boolean) =>
    syntax === "new" ? `subgroupMatrixLoad<${type}, ${colMajor ? "col_major" : "row_major"}>(${p}, ${off}, ${BK}u)` : `subgroupMatrixLoad<${type}>(${p}, ${off}, ${colMajor}, ${BK}u)`;
  const store = (off: string, value: string) => (syntax === "new" ? `subgroupMatrixStore<row_major>(&cs, ${off}, ${value}, 16u)` : `subgroupMatrixStore(&cs, ${off}, ${value}, false, 16u)`);
  const frags: [number, number][] = [];
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) frags.push([i, j]);
  return matmulKernelOf(`matmul sgmatrix ${wType} ${BM}x${BN}x${BK} ${SGM}x${SGN}`, /* wgsl */ `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
${MATMUL_BINDINGS("array<u32>", "array<f32>")}
${weightAt(wType)}
var<workgroup> as_: array<f16, ${BM * BK}>;
var<workgroup> bs: array<f16, ${BN * BK}>;
var<workgroup> cs: array<f32, ${NSG * 256}>;
// NOTE: clamped, as f16(x) of a finite x beyond 65504 is not defined to saturate
fn toF16(x: f32) -> f16 { return f16(clamp(x, -65504.0, 65504.0)); }
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let rows = au(0u); let Np = au(1u); let K = au(2u); let Nout = au(4u); let n0 = au(5u);
  let tn = (Np + ${BN - 1}u) / ${BN}u;
  let m0 = (wg / tn) * ${BM}u; let c0 = (wg % tn) * ${BN}u;
  let sg = lid / ${sgSize}u; let lane = lid % ${sgSize}u;
  let sm = sg / ${SGN}u; let sn = sg % ${SGN}u;
${frags.map(([i, j]) => `  var c${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join("\n")}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    for (var e = lid; e < ${BM * BK}u; e += ${NT}u) {
      let mm = e / ${BK}u; let kk = e % ${BK}u;
      as_[e] = toF16(select(0.0, x[(m0 + mm) * K + k0 + kk], m0 + mm < rows && k0 + kk < K));
    }
    for (var e = lid; e < ${BN * BK}u; e += ${NT}u) {
      let nn = e / ${BK}u; let kk = e % ${BK}u;
      bs[e] = toF16(select(0.0, wAt((c0 + nn) * K + k0 + kk), c0 + nn < Np && k0 + kk < K));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk += 16u) {
${Array.from({ length: FM }, (_, i) => `      let a${i} = ${load("subgroup_matrix_left<f16, 16, 16>", "&as_", `(sm * ${FM * 16}u + ${i * 16}u) * ${BK}u + kk`, false)};`).join("\n")}
${Array.from({ length: FN }, (_, j) => `      let b${j} = ${load("subgroup_matrix_right<f16, 16, 16>", "&bs", `(sn * ${FN * 16}u + ${j * 16}u) * ${BK}u + kk`, true)};`).join("\n")}
${frags.map(([i, j]) => `      c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`).join("\n")}
    }
    workgroupBarrier();
  }
  let hasBias = au(3u) == 1u;
${frags
  .map(
    ([i, j]) => `  ${store("sg * 256u", `c${i}_${j}`)};
  workgroupBarrier();
  for (var e = lane; e < 256u; e += ${sgSize}u) {
    let m = m0 + sm * ${FM * 16}u + ${i * 16}u + e / 16u; let n = c0 + sn * ${FN * 16}u + ${j * 16}u + e % 16u;
    if (m < rows && n < Np) { outp[m * Nout + n0 + n] = cs[sg * 256u + e] + select(0.0, bias[n0 + n], hasBias); }
  }
  workgroupBarrier();`,
  )
  .join("\n")}
}`);
});
