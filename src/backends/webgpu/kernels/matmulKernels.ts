/**
 * @module backends/webgpu/kernels/matmulKernels
 *
 * out[r, n] = x[r, :] . w[n, :] + bias[n]: x f32 [rows, K]; w [N, K] row-major
 * as Hugging Face stores Linear weights, f32 or bf16 (two per u32 word, kept
 * so in memory and widened in registers: exact); out f32 [rows, N];
 * accumulation in f32 (docs/design.md §6).
 *
 * - matvec (rows <= 8, decode): bound by reading the weights once for all
 *   rows; a workgroup of 256 threads takes 4 outputs, 64 threads each, and
 *   reads 8 bf16 (or 4 f32) weights per load where K allows (vec4 words).
 * - tiled (more rows, prefill): 64 x 64 output tiles, 16-deep K slices of x
 *   and w in workgroup memory, 4 x 4 outputs per thread. Gate training
 *   (train/webgpu/) also runs it transposed, out [rows, N] = dy [rows, K] · w
 *   with w [K, N] (the input gradient of a frozen matmul, no transposed copy
 *   of the weight), and accumulating into out.
 * args: rows, N, K, hasBias
 */
import type { Kernel } from "../gpuRuntime.js";
import { MAIN_ARGS, WG_INDEX } from "./wgslCommon.js";

export type WeightType = "f32" | "bf16";

const cache = new Map<string, Kernel>();
function kernel(label: string, code: string): Kernel {
  let k = cache.get(code);
  if (!k) cache.set(code, (k = { label, bindings: ["rw", "ro", "ro", "ro"], code }));
  return k;
}

const BINDINGS = (wArray: string, xArray: string) => /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<f32>;
@group(0) @binding(1) var<storage, read> x: ${xArray};
@group(0) @binding(2) var<storage, read> w: ${wArray};
@group(0) @binding(3) var<storage, read> bias: array<f32>;`;

/** Element (n, k) of the weight as f32, for element-wise paths. */
function weightAt(wType: WeightType): string {
  return wType === "f32"
    ? "fn wAt(e: u32) -> f32 { return bitcast<f32>(w[e]); }"
    : "fn wAt(e: u32) -> f32 { return bitcast<f32>((w[e >> 1u] << ((1u - (e & 1u)) * 16u)) & 0xffff0000u); }";
}

/** Whether the vectorised matvec applies: whole vec4 words per weight row. */
export function matvecVectorised(wType: WeightType, K: number): boolean {
  return wType === "bf16" ? K % 8 === 0 : K % 4 === 0;
}

/** Decode-sized matmul for exactly `rows` rows (1..8). */
export function matvecKernel(wType: WeightType, rows: number, vectorised: boolean): Kernel {
  const R = Array.from({ length: rows }, (_, r) => r);
  let body: string;
  if (vectorised) {
    const per = wType === "bf16" ? 8 : 4; // weights per vec4 load
    const load =
      wType === "bf16"
        ? `let q = w[wb + j];
      let w0 = vec4<f32>(bitcast<f32>(q.x << 16u), bitcast<f32>(q.x & 0xffff0000u), bitcast<f32>(q.y << 16u), bitcast<f32>(q.y & 0xffff0000u));
      let w1 = vec4<f32>(bitcast<f32>(q.z << 16u), bitcast<f32>(q.z & 0xffff0000u), bitcast<f32>(q.w << 16u), bitcast<f32>(q.w & 0xffff0000u));
${R.map((r) => `      acc${r} += dot(w0, x[${r}u * K4 + 2u * j]) + dot(w1, x[${r}u * K4 + 2u * j + 1u]);`).join("\n")}`
        : `let w0 = w[wb + j];
${R.map((r) => `      acc${r} += dot(w0, x[${r}u * K4 + j]);`).join("\n")}`;
    body = `
    let K4 = K / 4u; let nj = K / ${per}u; let wb = n * nj;
    for (var j = t; j < nj; j += 64u) {
      ${load}
    }`;
  } else {
    body = `
    for (var k = t; k < K; k += 64u) {
      let wv = wAt(n * K + k);
${R.map((r) => `      acc${r} += x[${r}u * K + k] * wv;`).join("\n")}
    }`;
  }
  const wArray = vectorised ? (wType === "bf16" ? "array<vec4<u32>>" : "array<vec4<f32>>") : wType === "bf16" ? "array<u32>" : "array<u32>";
  const xArray = vectorised ? "array<vec4<f32>>" : "array<f32>";
  return kernel(`matvec ${wType} x${rows}`, /* wgsl */ `
${BINDINGS(wArray, xArray)}
${vectorised ? "" : weightAt(wType)}
var<workgroup> red: array<f32, ${256 * rows}>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let N = au(1u); let K = au(2u);
  let n = wg * 4u + lid / 64u; let t = lid % 64u;
${R.map((r) => `  var acc${r} = 0.0;`).join("\n")}
  if (n < N) {${body}
  }
${R.map((r) => `  red[${r}u * 256u + lid] = acc${r};`).join("\n")}
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) {
${R.map((r) => `      red[${r}u * 256u + lid] += red[${r}u * 256u + lid + s];`).join("\n")}
    }
    workgroupBarrier();
  }
  if (t == 0u && n < N) {
    let b = select(0.0, bias[n], au(3u) == 1u);
${R.map((r) => `    outp[${r}u * N + n] = red[${r}u * 256u + lid] + b;`).join("\n")}
  }
}`);
}

export interface TiledVariant {
  /** w is [K, N]: out = x · w (the weight read down its columns). */
  readonly transposed?: boolean;
  /** out += the product (no bias then). */
  readonly accumulate?: boolean;
}

/** Prefill-sized matmul: 64 x 64 tiles. */
export function tiledMatmulKernel(wType: WeightType, variant: TiledVariant = {}): Kernel {
  const wIndex = variant.transposed ? "(k0 + kk) * N + n0 + mm" : "(n0 + mm) * K + k0 + kk";
  const prior = variant.accumulate ? "outp[m * N + n] + " : "";
  const label = `matmul ${wType}${variant.transposed ? " transposed" : ""}${variant.accumulate ? " accumulate" : ""}`;
  return kernel(label, /* wgsl */ `
${BINDINGS("array<u32>", "array<f32>")}
${weightAt(wType)}
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let rows = au(0u); let N = au(1u); let K = au(2u);
  let tn = (N + 63u) / 64u;
  let m0 = (wg / tn) * 64u; let n0 = (wg % tn) * 64u;
  let tx = lid % 16u; let ty = lid / 16u;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var i = 0u; i < 4u; i++) {
      let e = lid + i * 256u; let mm = e / 16u; let kk = e % 16u;
      xs[e] = select(0.0, x[(m0 + mm) * K + k0 + kk], m0 + mm < rows && k0 + kk < K);
      ws[e] = select(0.0, wAt(${wIndex}), n0 + mm < N && k0 + kk < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = vec4<f32>(xs[(ty * 4u) * 16u + kk], xs[(ty * 4u + 1u) * 16u + kk], xs[(ty * 4u + 2u) * 16u + kk], xs[(ty * 4u + 3u) * 16u + kk]);
      let b = vec4<f32>(ws[(tx * 4u) * 16u + kk], ws[(tx * 4u + 1u) * 16u + kk], ws[(tx * 4u + 2u) * 16u + kk], ws[(tx * 4u + 3u) * 16u + kk]);
      for (var i = 0u; i < 4u; i++) {
        acc[i * 4u] += a[i] * b.x; acc[i * 4u + 1u] += a[i] * b.y; acc[i * 4u + 2u] += a[i] * b.z; acc[i * 4u + 3u] += a[i] * b.w;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty * 4u + i;
    if (m >= rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx * 4u + j;
      if (n < N) { outp[m * N + n] = ${prior}acc[i * 4u + j] + select(0.0, bias[n], au(3u) == 1u); }
    }
  }
}`);
}
