/**
 * @module backends/webgpu/kernels/matmulSgKernels
 *
 * Prefill matmul on tensor cores through `chromium-experimental-subgroup-matrix`
 * (f16 x f16 -> f32 fragments of 16 x 16 x 16): the matmulKernels.ts contract
 * (args rows, Np, K, hasBias, Nout, n0) with a looser tolerance.
 *
 * A workgroup takes a BM x BN output tile with SM x SN subgroups, each a
 * (BM/SM) x (BN/SN) block of fragments. Per BK-deep slice, x (f32) and w
 * (bf16 or f32) are converted to f16 into workgroup memory, rows padded by
 * `pad` halves (spreads a fragment's rows over banks): x row-major [m][k], w
 * as stored [n][k], which is B = w^T read column-major. Where K allows whole
 * vec4 loads, the next slice's loads are issued into registers before this
 * slice's products (they are in flight while the tensor cores work).
 * Loads past the end of x or w are discarded by a select (robust access
 * keeps them harmless). Products accumulate in f32 fragments; whole tiles without bias store them
 * straight to `out`, others through workgroup memory (bounds, bias).
 *
 * Several subgroups per workgroup need `nonUniform` (sgMatrixWgsl.ts): each
 * subgroup's fragment offsets differ, and Tint checks them against the
 * workgroup. The subgroup of invocation i is i / 32: subgroups of exactly
 * 32 consecutive invocations (NVIDIA), or the emulated dialect.
 *
 * Precision: each input is rounded once to f16 (relative 2^-11; bf16 weights
 * lose nothing in the mantissa, f16 having 3 bits more, but values beyond
 * f16's range are clamped to +-65504 and magnitudes below 2^-24 flush to 0;
 * NaN stays NaN); sums are f32. The error is bounded by ~2^-10 sum |x||w|,
 * the suite allows 4e-3 of the largest output; engine logits stay within the
 * fixtures' 1e-3 relative L2 (checked on the H200). Split, x and f32 weights
 * are each the sum of two f16 (sgMatrixWgsl.ts F16_SPLIT_WGSL): f32's answers
 * up to the low halves' 2^-24 floor.
 */
import type { Kernel } from "../gpuRuntime.js";
import { MATMUL_BINDINGS, matmulKernelOf, weightAt, type WeightType } from "./matmulKernels.js";
import { tileLoopWgsl, tileOriginWgsl, tileStoreWgsl } from "./tileLoopWgsl.js";
import { F16_SPLIT_WGSL, SgMatrixWgsl, type SgMatrixSyntax } from "./sgMatrixWgsl.js";
import { MAIN_ARGS, WG_INDEX, memoKernel, range } from "./wgslCommon.js";

export { SG_MATRIX_SYNTAX_PROBE, type SgMatrixSyntax } from "./sgMatrixWgsl.js";

export interface SgMatrixVariant {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
  /** Subgroups along M and along N (default 1 x 1). */
  readonly sgm?: number;
  readonly sgn?: number;
  /** Halves each tile row is padded by (default 0). */
  readonly pad?: number;
  /** Tiles in workgroup memory (default 1): with 2, the next slice is put in the other while this one's products run, one barrier a slice (K of whole vec4s only). */
  readonly buffers?: 1 | 2;
}

/** Subgroups a workgroup of this variant has. */
export function sgMatrixSubgroups(v: SgMatrixVariant): number {
  return (v.sgm ?? 1) * (v.sgn ?? 1);
}

/** Workgroup memory the kernel declares: its f16 tiles (two of x split, two of f32 weights split, each doubled with two buffers) and the f32 staging of one fragment per subgroup. */
export function sgMatrixSharedBytes(wType: WeightType, v: SgMatrixVariant, vectorised: boolean, split: boolean): number {
  const S = v.bk + (v.pad ?? 0), bufs = vectorised ? (v.buffers ?? 1) : 1;
  const [xParts, wParts] = [split ? 2 : 1, split && wType === "f32" ? 2 : 1];
  return 2 * S * bufs * (xParts * v.bm + wParts * v.bn) + 4 * 256 * sgMatrixSubgroups(v);
}

/** Whether the vec4 tile fills apply: whole vec4s of x (4 f32) and of w (8 bf16 or 4 f32) along K. */
export function sgMatrixVectorised(wType: WeightType, K: number): boolean {
  return K % (wType === "bf16" ? 8 : 4) === 0;
}

/** The shared part of the kernel's identity: how the device spells the ops and lets subgroups differ. */
export interface SgMatrixDialect {
  readonly syntax: SgMatrixSyntax;
  /** The directive allowing per-subgroup operands (sgMatrixWgsl.ts), "" where none compiles (one subgroup per workgroup only). */
  readonly nonUniform: string;
}

/** `split`: x (and f32 weights) as two f16 each, f32's answers up to SG_MATRIX_SPLIT_TOLERANCE, for two products per one (three with f32 weights). */
export const sgMatrixMatmulKernel = memoKernel(function sgMatrixMatmulKernel(wType: WeightType, v: SgMatrixVariant, dialect: SgMatrixDialect, vectorised: boolean, split = false): Kernel {
  const { bm: BM, bn: BN, bk: BK } = v;
  const [SM, SN, PAD] = [v.sgm ?? 1, v.sgn ?? 1, v.pad ?? 0];
  // NOTE: the element-wise fill (K not of whole vec4s) keeps one buffer
  const BUFS = vectorised ? (v.buffers ?? 1) : 1;
  const NSG = SM * SN, NT = 32 * NSG;
  const [WM, WN] = [BM / SM, BN / SN];
  const [FM, FN] = [WM / 16, WN / 16];
  if (!Number.isInteger(FM) || !Number.isInteger(FN) || FM < 1 || FN < 1 || BK % 16 !== 0) throw new Error(`subgroup-matrix matmul: tile ${BM}x${BN}x${BK} over ${SM}x${SN} subgroups is not whole 16 x 16 fragments`);
  if (NSG > 1 && dialect.syntax !== "emulated" && !dialect.nonUniform) throw new Error("subgroup-matrix matmul: this device's WGSL compiler allows one subgroup per workgroup only");
  const S = BK + PAD; // f16 stride of a tile row
  const ops = new SgMatrixWgsl(dialect.syntax);
  const frags = range(FM).flatMap((i) => range(FN).map((j) => [i, j] as const));
  const wPer = wType === "bf16" ? 8 : 4; // weights per vec4 load
  const wVec = wType === "bf16" ? "vec4<u32>" : "vec4<f32>";
  // ---- the fill of one slice: loads into registers (fetch), then f16 into the tiles (put)
  const slots = (total: number) => range(Math.ceil(total / NT)).map((s) => ({ s, guard: (s + 1) * NT > total ? `if (lid + ${s * NT}u < ${total}u) ` : "" }));
  const [xSlots, wSlots] = [slots((BM * BK) / 4), slots((BN * BK) / wPer)];
  const fetch = (k: string) =>
    [
      ...xSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let mm = e / ${BK / 4}u; let kk = ${k} + (e % ${BK / 4}u) * 4u;
      xr[${s}] = select(vec4<f32>(0.0), x[((m0 + mm) * K + kk) / 4u], m0 + mm < rows && kk < K); }`),
      ...wSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let nn = e / ${BK / wPer}u; let kk = ${k} + (e % ${BK / wPer}u) * ${wPer}u;
      wr[${s}] = select(${wVec}(0), w[((c0 + nn) * K + kk) / ${wPer}u], c0 + nn < Np && kk < K); }`),
    ].join("\n");
  // NOTE: split, x's low halves go to al_ and f32 weights' to bl (bf16 weights are whole f16s); the products that
  // matter are a b, a' b and a b' (a' b' is below f32's rounding)
  const [xParts, wParts] = [split ? 2 : 1, split && wType === "f32" ? 2 : 1];
  const [xTiles, wTiles] = [["as_", "al_"].slice(0, xParts), ["bs", "bl"].slice(0, wParts)];
  const terms = [[0, 0], [1, 0], [0, 1]].filter(([a, b]) => a < xParts && b < wParts);
  // `tiles[p][at] = part p of value` for each part
  const store = (tiles: string[], at: string, value: string) => tiles.map((t, p) => `${t}[${at}] = ${p === 0 ? "toF16" : "lowF16"}(${value});`).join(" ");
  const bf16Pair = (word: string, at: string) => `bs[${at}] = toF16(bitcast<f32>(${word} << 16u)); bs[${at} + 1u] = toF16(bitcast<f32>(${word} & 0xffff0000u));`;
  const lanes = ["x", "y", "z", "w"];
  // NOTE: xo, wo: the first element of the x and w tiles written (buffer b of BUFS at b BM S and b BN S)
  const put = (xo: string, wo: string) =>
    [
      ...xSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let at = ${xo} + (e / ${BK / 4}u) * ${S}u + (e % ${BK / 4}u) * 4u; let xv = xr[${s}];
      ${lanes.map((c, i) => store(xTiles, `at + ${i}u`, `xv.${c}`)).join(" ")} }`),
      ...wSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let at = ${wo} + (e / ${BK / wPer}u) * ${S}u + (e % ${BK / wPer}u) * ${wPer}u; let wv = wr[${s}];
      ${wType === "bf16" ? lanes.map((c, i) => bf16Pair(`wv.${c}`, `at + ${2 * i}u`)).join(" ") : lanes.map((c, i) => store(wTiles, `at + ${i}u`, `wv.${c}`)).join(" ")} }`),
    ].join("\n");
  const elementFill = `    for (var e = lid; e < ${BM * BK}u; e += ${NT}u) {
      let mm = e / ${BK}u; let kk = e % ${BK}u;
      let v = select(0.0, x[(m0 + mm) * K + k0 + kk], m0 + mm < rows && k0 + kk < K);
      ${store(xTiles, `mm * ${S}u + kk`, "v")}
    }
    for (var e = lid; e < ${BN * BK}u; e += ${NT}u) {
      let nn = e / ${BK}u; let kk = e % ${BK}u;
      let v = select(0.0, wAt((c0 + nn) * K + k0 + kk), c0 + nn < Np && k0 + kk < K);
      ${store(wTiles, `nn * ${S}u + kk`, "v")}
    }`;
  const products = (xo: string, wo: string) => `    for (var kk = 0u; kk < ${BK}u; kk += 16u) {
${xTiles.flatMap((t, p) => range(FM).map((i) => `      let a${p}_${i} = ${ops.load("left", t, `${xo} + (am + ${i * 16}u) * ${S}u + kk`, false, `${S}u`)};`)).join("\n")}
${wTiles.flatMap((t, p) => range(FN).map((j) => `      let b${p}_${j} = ${ops.load("right", t, `${wo} + (bn0 + ${j * 16}u) * ${S}u + kk`, true, `${S}u`)};`)).join("\n")}
${frags.flatMap(([i, j]) => terms.map(([a, b]) => `      c${i}_${j} = ${ops.mma(`a${a}_${i}`, `b${b}_${j}`, `c${i}_${j}`)};`)).join("\n")}
    }`;
  const registers = `  var xr: array<vec4<f32>, ${xSlots.length}>;
  var wr: array<${wVec}, ${wSlots.length}>;
${fetch("0u")}`;
  const loop = !vectorised
    ? `  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
${elementFill}
    workgroupBarrier();
${products("0u", "0u")}
    workgroupBarrier();
  }`
    : tileLoopWgsl({ bk: BK, buffers: BUFS, registers, fetch, put, products, xTile: BM * S, wTile: BN * S });
  const epilogue = tileStoreWgsl(ops, frags, "m0 + am", "c0 + bn0", BM, BN);
  const name = `matmul sgmatrix ${wType} ${BM}x${BN}x${BK} ${SM}x${SN}${PAD ? ` pad${PAD}` : ""}${BUFS === 2 ? " db" : ""}${vectorised ? " vec4" : ""}${split ? " split" : ""}${dialect.syntax === "emulated" ? " emulated" : ""}`;
  const arrays = vectorised ? [wType === "bf16" ? "array<vec4<u32>>" : "array<vec4<f32>>", "array<vec4<f32>>"] : ["array<u32>", "array<f32>"];
  return matmulKernelOf(name, /* wgsl */ `${ops.enables(NSG > 1 ? dialect.nonUniform : "")}
${MATMUL_BINDINGS(arrays[0], arrays[1])}
${vectorised ? "" : weightAt(wType)}
${xTiles.map((t) => `var<workgroup> ${t}: array<f16, ${BUFS * BM * S}>;`).join("\n")}
${wTiles.map((t) => `var<workgroup> ${t}: array<f16, ${BUFS * BN * S}>;`).join("\n")}
var<workgroup> cs: array<f32, ${NSG * 256}>;
${F16_SPLIT_WGSL}
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
${tileOriginWgsl(BM, BN, SM, SN, true)}
${frags.map(([i, j]) => `  var c${i}_${j} = ${ops.zero()};`).join("\n")}
${loop}
${epilogue}
}
${ops.helpers()}`);
});
