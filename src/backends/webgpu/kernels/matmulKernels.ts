/**
 * @module backends/webgpu/kernels/matmulKernels
 *
 * out[r, n0 + n] = x[r, :] . w[n, :] + bias[n0 + n]: x f32 [rows, K]; w [Np, K]
 * row-major as Hugging Face stores Linear weights (or one part of its rows,
 * gpuTensor.ts RowPart), f32 or bf16 (two per u32 word, kept so in memory
 * and widened in registers: exact); out f32 [rows, Nout]; accumulation in
 * f32 (docs/design.md §6). Two portable kernels here, both f32 arithmetic:
 *
 * - matvec (rows <= 8, decode): bound by reading the weights once for all
 *   rows. A team of `tpr` threads takes one output row, each thread reading
 *   8 bf16 (or 4 f32) weights per vec4 load, `unroll` loads issued before
 *   they are used (bytes in flight are what a bandwidth-bound kernel needs);
 *   the team's sum by a shared-memory tree, or with subgroups by
 *   subgroupAdd and one shared step (teams are whole subgroups).
 * - tiled (prefill): BM x BN output tiles, BK-deep slices of x and w in
 *   workgroup memory (k-major, read as vec4), TM x TN outputs per thread.
 *
 * kernels/matmulSgKernels.ts has the subgroup-matrix (f16 tensor core) tiles.
 * args: rows, Np, K, hasBias, Nout, n0
 */
import type { Kernel } from "../gpuRuntime.js";
import { MAIN_ARGS, WG_INDEX } from "./wgslCommon.js";

export type WeightType = "f32" | "bf16";

const cache = new Map<string, Kernel>();
export function matmulKernelOf(label: string, code: string): Kernel {
  let k = cache.get(code);
  if (!k) cache.set(code, (k = { label, bindings: ["rw", "ro", "ro", "ro"], code }));
  return k;
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
}

export const PORTABLE_MATVEC: MatvecVariant = { tpr: 64, unroll: 2, subgroups: false };

/** Decode-sized matmul for exactly `rows` rows (1..8). */
export function matvecKernel(wType: WeightType, rows: number, vectorised: boolean, variant: MatvecVariant = PORTABLE_MATVEC): Kernel {
  const { tpr: TPR, subgroups } = variant;
  const U = vectorised ? variant.unroll : 1;
  const RPW = 256 / TPR;
  const R = Array.from({ length: rows }, (_, r) => r);
  const Us = Array.from({ length: U }, (_, u) => u);
  let body: string;
  if (vectorised) {
    const per = wType === "bf16" ? 8 : 4; // weights per vec4 load
    const use = (u: number) =>
      wType === "bf16"
        ? `{
        let jj = j + ${u * TPR}u;
        let w0 = vec4<f32>(bitcast<f32>(q${u}.x << 16u), bitcast<f32>(q${u}.x & 0xffff0000u), bitcast<f32>(q${u}.y << 16u), bitcast<f32>(q${u}.y & 0xffff0000u));
        let w1 = vec4<f32>(bitcast<f32>(q${u}.z << 16u), bitcast<f32>(q${u}.z & 0xffff0000u), bitcast<f32>(q${u}.w << 16u), bitcast<f32>(q${u}.w & 0xffff0000u));
${R.map((r) => `        acc${r} += dot(w0, x[${r}u * K4 + 2u * jj]) + dot(w1, x[${r}u * K4 + 2u * jj + 1u]);`).join("\n")}
      }`
        : `{
        let jj = j + ${u * TPR}u;
${R.map((r) => `        acc${r} += dot(q${u}, x[${r}u * K4 + jj]);`).join("\n")}
      }`;
    body = `
    let K4 = K / 4u; let nj = K / ${per}u; let wb = n * nj;
    var j = t;
    for (; j + ${(U - 1) * TPR}u < nj; j += ${U * TPR}u) {
${Us.map((u) => `      let q${u} = w[wb + j + ${u * TPR}u];`).join("\n")}
${Us.map(use).join("\n")}
    }
    for (; j < nj; j += ${TPR}u) {
      let q0 = w[wb + j];
${use(0)}
    }`;
  } else {
    body = `
    for (var k = t; k < K; k += ${TPR}u) {
      let wv = wAt(n * K + k);
${R.map((r) => `      acc${r} += x[${r}u * K + k] * wv;`).join("\n")}
    }`;
  }
  const wArray = vectorised ? (wType === "bf16" ? "array<vec4<u32>>" : "array<vec4<f32>>") : "array<u32>";
  const xArray = vectorised ? "array<vec4<f32>>" : "array<f32>";
  // ---- the team's sum: a shared-memory tree, or subgroupAdd then the team's subgroups in shared memory
  const reduce = subgroups
    ? `
${R.map((r) => `  let s${r} = subgroupAdd(acc${r});`).join("\n")}
  if (sid == 0u) {
${R.map((r) => `    red[${r}u * 256u + lid / sgs] = s${r};`).join("\n")}
  }
  workgroupBarrier();
  if (t == 0u && n < Np) {
    let b = select(0.0, bias[n0 + n], au(3u) == 1u);
    let first = lid / sgs; let count = ${TPR}u / sgs;
${R.map((r) => `    var sum${r} = 0.0;\n    for (var i = 0u; i < count; i++) { sum${r} += red[${r}u * 256u + first + i]; }\n    outp[${r}u * Nout + n0 + n] = sum${r} + b;`).join("\n")}
  }`
    : `
${R.map((r) => `  red[${r}u * 256u + lid] = acc${r};`).join("\n")}
  workgroupBarrier();
  for (var s = ${TPR / 2}u; s > 0u; s >>= 1u) {
    if (t < s) {
${R.map((r) => `      red[${r}u * 256u + lid] += red[${r}u * 256u + lid + s];`).join("\n")}
    }
    workgroupBarrier();
  }
  if (t == 0u && n < Np) {
    let b = select(0.0, bias[n0 + n], au(3u) == 1u);
${R.map((r) => `    outp[${r}u * Nout + n0 + n] = red[${r}u * 256u + lid] + b;`).join("\n")}
  }`;
  const sgArgs = subgroups ? ", @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) sgs: u32" : "";
  return matmulKernelOf(`matvec ${wType} x${rows} t${TPR} u${U}${subgroups ? " sg" : ""}`, /* wgsl */ `${subgroups ? "enable subgroups;" : ""}
${MATMUL_BINDINGS(wArray, xArray)}
${vectorised ? "" : weightAt(wType)}
var<workgroup> red: array<f32, ${256 * rows}>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}${sgArgs}) {
  ${WG_INDEX}
  let Np = au(1u); let K = au(2u); let Nout = au(4u); let n0 = au(5u);
  let n = wg * ${RPW}u + lid / ${TPR}u; let t = lid % ${TPR}u;
${R.map((r) => `  var acc${r} = 0.0;`).join("\n")}
  if (n < Np) {${body}
  }
${reduce}
}`);
}

export interface TiledVariant {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
  readonly tm: number;
  readonly tn: number;
}

export const PORTABLE_TILED: TiledVariant = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };

/** Workgroups of a tiled matmul over rows x Np. */
export function tiledGroups(v: { bm: number; bn: number }, rows: number, Np: number): number {
  return Math.ceil(rows / v.bm) * Math.ceil(Np / v.bn);
}

/** Prefill-sized matmul: BM x BN tiles, TM x TN outputs per thread (f32 arithmetic). */
export function tiledMatmulKernel(wType: WeightType, v: TiledVariant = PORTABLE_TILED): Kernel {
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
}
