/**
 * @module backends/webgpu/kernels/matmulKernels
 *
 * out[r, n0 + n] = x[r, :] . w[n, :] + bias[n0 + n]: x f32 [rows, K]; w [Np, K]
 * row-major as Hugging Face stores Linear weights (or one part of its rows,
 * gpuTensor.ts RowPart), f32 or bf16 (two per u32 word, kept so in memory
 * and widened in registers: exact); out f32 [rows, Nout]; accumulation in
 * f32 (docs/design.md §6). Two portable kernels here, both f32 arithmetic:
 *
 * - matvec (rows <= 8, decode): kernels/matvecKernels.ts.
 * - tiled (prefill): BM x BN output tiles, BK-deep slices of x and w in
 *   workgroup memory (k-major, read as vec4), TM x TN outputs per thread.
 *
 * kernels/matmulSgKernels.ts has the subgroup-matrix (f16 tensor core) tiles.
 * args (tiled): rows, Np, K, hasBias, Nout, n0
 */
import type { Kernel } from "../gpuRuntime.js";
import { MAIN_ARGS, WG_INDEX, memoKernel, kernelOf } from "./wgslCommon.js";
import { matvecFamilyKernel } from "./matvecKernels.js";

export type WeightType = "f32" | "bf16";

/** A matmul kernel (bindings out, x, w, bias) of this source. */
export function matmulKernelOf(label: string, code: string): Kernel {
  return kernelOf(label, ["rw", "ro", "ro", "ro"], code);
}

export const MATMUL_BINDINGS = (wArray: string, xArray: string) => /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<f32>;
@group(0) @binding(1) var<storage, read> x: ${xArray};
@group(0) @binding(2) var<storage, read> w: ${wArray};
@group(0) @binding(3) var<storage, read> bias: array<f32>;`;

/** Element e of the weight (row-major [Np, K]) as f32, for element-wise paths. */
export function weightAt(wType: WeightType): string {
  return wType === "f32"
    ? "fn wAt(e: u32) -> f32 { return bitcast<f32>(w[e]); }"
    : "fn wAt(e: u32) -> f32 { return bitcast<f32>((w[e >> 1u] << ((1u - (e & 1u)) * 16u)) & 0xffff0000u); }";
}

/** Whether the vectorised matvec applies: whole vec4 words per weight row. */
export function matvecVectorised(wType: WeightType, K: number): boolean {
  return wType === "bf16" ? K % 8 === 0 : K % 4 === 0;
}

export interface MatvecVariant {
  /** Threads per output row (a power of two, 8..256). */
  readonly tpr: number;
  /** Loads issued before use per thread and step. */
  readonly unroll: number;
  /** Team sums through subgroupAdd (needs the subgroups feature, subgroups of at most tpr threads). */
  readonly subgroups: boolean;
  /** Output rows per team (default 1; more need subgroups): each load of x serves them all. */
  readonly outRows?: number;
}

export const PORTABLE_MATVEC: MatvecVariant = { tpr: 64, unroll: 2, subgroups: false };

/** Decode-sized matmul for exactly `rows` rows (1..8): matvecKernels.ts, one segment. args: rows, K, n0, Nout, Np, hasBias */
export function matvecKernel(wType: WeightType, rows: number, vectorised: boolean, variant: MatvecVariant = PORTABLE_MATVEC): Kernel {
  return matvecFamilyKernel(wType, rows, vectorised, variant, 1, "segments", 0, 0, false, 0, 0);
}

export interface TiledVariant {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
  readonly tm: number;
  readonly tn: number;
}

export const PORTABLE_TILED: TiledVariant = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
/** The tiles of hardware GPUs: 8 x 4 outputs per thread (on the H200 1.4-2x the portable tiles' TFLOP/s). */
export const GPU_TILED: TiledVariant = { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 };

/** Workgroups of a tiled matmul over rows x Np. */
export function tiledGroups(v: { bm: number; bn: number }, rows: number, Np: number): number {
  return Math.ceil(rows / v.bm) * Math.ceil(Np / v.bn);
}

/** Prefill-sized matmul: BM x BN tiles, TM x TN outputs per thread (f32 arithmetic). */
export const tiledMatmulKernel = memoKernel(function tiledMatmulKernel(wType: WeightType, v: TiledVariant = PORTABLE_TILED): Kernel {
  const { bm: BM, bn: BN, bk: BK, tm: TM, tn: TN } = v;
  const NT = (BM / TM) * (BN / TN);
  const TX = BN / TN;
  return matmulKernelOf(`matmul ${wType} ${BM}x${BN}x${BK} ${TM}x${TN}`, /* wgsl */ `
${MATMUL_BINDINGS("array<u32>", "array<f32>")}
${weightAt(wType)}
// k-major tiles: xs[k][m], ws[k][n], read as vec4 along m and n
var<workgroup> xs: array<vec4<f32>, ${(BK * BM) / 4}>;
var<workgroup> ws: array<vec4<f32>, ${(BK * BN) / 4}>;
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let rows = au(0u); let Np = au(1u); let K = au(2u); let Nout = au(4u); let n0 = au(5u);
  let tn = (Np + ${BN - 1}u) / ${BN}u;
  let m0 = (wg / tn) * ${BM}u; let c0 = (wg % tn) * ${BN}u;
  let tx = lid % ${TX}u; let ty = lid / ${TX}u;
  var acc: array<f32, ${TM * TN}>;
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    for (var e = lid; e < ${BM * BK}u; e += ${NT}u) {
      let mm = e / ${BK}u; let kk = e % ${BK}u;
      xs[kk * ${BM / 4}u + mm / 4u][mm % 4u] = select(0.0, x[(m0 + mm) * K + k0 + kk], m0 + mm < rows && k0 + kk < K);
    }
    for (var e = lid; e < ${BN * BK}u; e += ${NT}u) {
      let nn = e / ${BK}u; let kk = e % ${BK}u;
      ws[kk * ${BN / 4}u + nn / 4u][nn % 4u] = select(0.0, wAt((c0 + nn) * K + k0 + kk), c0 + nn < Np && k0 + kk < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
${Array.from({ length: TM / 4 }, (_, i) => `      let a${i} = xs[kk * ${BM / 4}u + ty * ${TM / 4}u + ${i}u];`).join("\n")}
${Array.from({ length: TN / 4 }, (_, j) => `      let b${j} = ws[kk * ${BN / 4}u + tx * ${TN / 4}u + ${j}u];`).join("\n")}
${Array.from({ length: TM }, (_, i) => Array.from({ length: TN / 4 }, (_, j) => `      acc[${i * TN + 4 * j}] += a${i >> 2}[${i & 3}] * b${j}.x; acc[${i * TN + 4 * j + 1}] += a${i >> 2}[${i & 3}] * b${j}.y; acc[${i * TN + 4 * j + 2}] += a${i >> 2}[${i & 3}] * b${j}.z; acc[${i * TN + 4 * j + 3}] += a${i >> 2}[${i & 3}] * b${j}.w;`).join("\n")).join("\n")}
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${TM}u; i++) {
    let m = m0 + ty * ${TM}u + i;
    if (m >= rows) { continue; }
    for (var j = 0u; j < ${TN}u; j++) {
      let n = c0 + tx * ${TN}u + j;
      if (n < Np) { outp[m * Nout + n0 + n] = acc[i * ${TN}u + j] + select(0.0, bias[n0 + n], au(3u) == 1u); }
    }
  }
}`);
});
