/**
 * @module backends/webgpu/kernels/transformerKernels
 *
 * WGSL of the transformer's light ops: embed, rmsNorm (also per head: q/k
 * norm), rope (cos/sin planned on the host, per row), siluMul, add,
 * gatherRows, and a byte-exact copy of host data into any tensor (small
 * writes recorded in order with the ops, and writes not aligned to words).
 * Shapes are in each kernel's comment; arguments come in `args`.
 */
import type { Kernel } from "../gpuRuntime.js";
import { errorWgsl } from "../kernelAbi.js";
import { MAIN_ARGS, WG_INDEX, memoKernel, kernelOf } from "./wgslCommon.js";


/**
 * out u32 [rows, H] = bits of table[ids[r]]; table f32 or bf16 (packed) [V, H], or its
 * rows [firstRow, firstRow + numRows) (a part: other ids are the other parts'). args: rows, H, V, isBf16, firstRow, numRows
 */
export const embedKernel = memoKernel(function embedKernel(): Kernel {
  return kernelOf("embed", ["rw", "ro", "ro", "rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<u32>;
@group(0) @binding(1) var<storage, read> tab: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
${errorWgsl(3)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  let rows = au(0u); let hidden = au(1u);
  if (i >= rows * hidden) { return; }
  let r = i / hidden; let c = i % hidden;
  let id = ids[r];
  if (id < 0 || u32(id) >= au(2u)) { fail(1u, bitcast<u32>(id)); return; }
  let local = u32(id) - au(4u);
  if (local >= au(5u)) { return; }
  let e = local * hidden + c;
  if (au(3u) == 1u) { outp[i] = (tab[e >> 1u] << ((1u - (e & 1u)) * 16u)) & 0xffff0000u; } else { outp[i] = tab[e]; }
}`);
});

/**
 * A loop over a row's `dim` elements in rounds of four per thread: `load(i)`
 * for each of the round's elements first, then `use(i, value)` for each, so
 * a round's loads are in flight together (a store between two loads of a
 * round would make the second wait for the first: the compiler must assume
 * bindings alias). `load` must be safe past the row's end (its value is then unused).
 */
function rowRounds(load: (i: string) => string, use: (i: string, value: string) => string): string {
  const k = [0, 1, 2, 3];
  return `  for (var i0 = lid; i0 < dim; i0 += 1024u) {
${k.map((j) => `    let i${j} = min(i0 + ${j * 256}u, dim - 1u); let r${j} = ${load(`i${j}`)};`).join("\n")}
${k.map((j) => `    if (i0 + ${j * 256}u < dim) { ${use(`i${j}`, `r${j}`)} }`).join("\n")}
  }`;
}

/** Most rounds of 1024 elements a thread holds in registers (rows of up to 8192: Llama-70B's hidden size). */
const MAX_HELD_ROUNDS = 8;

/** Rounds a norm of `dim` holds in registers (0: too wide, the loop form). */
export function normRounds(dim: number): number {
  const rounds = Math.ceil(dim / 1024);
  return rounds <= MAX_HELD_ROUNDS ? rounds : 0;
}

/**
 * A row normed with one trip to memory (the row held in registers, `rounds`
 * rounds of four per thread): every element's `load(i)` and its weight first,
 * then `sum(i, value)` in rowRounds' order (so the sum is bit for bit the
 * loop's), the 1 / rms, and `store(i, value, weight)`. With rounds 0, the
 * loop form: rowRounds twice, the second reloading the row from memory.
 */
function normRow(rounds: number, load: (i: string) => string, sum: (i: string, value: string) => string, reload: (i: string) => string, store: (i: string, value: string, weight: string) => string, weights = "w", eps = "af(2u)"): string {
  if (rounds === 0) {
    return `  var s = 0.0;
${rowRounds(load, sum)}
${invRms(eps)}
${rowRounds((i) => `vec2<f32>(${weights}[${i}], ${reload(i)})`, (i, v) => store(i, `${v}.y`, `${v}.x`))}`;
  }
  const E = Array.from({ length: 4 * rounds }, (_, e) => e);
  return `  var s = 0.0;
${E.map((e) => `  let i${e} = min(lid + ${e * 256}u, dim - 1u); let r${e} = ${load(`i${e}`)}; let w${e} = ${weights}[i${e}];`).join("\n")}
${E.map((e) => `  if (lid + ${e * 256}u < dim) { ${sum(`i${e}`, `r${e}`)} }`).join("\n")}
${invRms(eps)}
${E.map((e) => `  if (lid + ${e * 256}u < dim) { ${store(`i${e}`, `r${e}`, `w${e}`)} }`).join("\n")}`;
}

/**
 * The prologue of a decode matvec that reads rmsNorm(xr) (matvecKernels.ts):
 * every workgroup norms the rows of `xr` (f32 [rows, dim]) into its own copy
 * `x` in workgroup memory (vec4s when vectorised), by normRow as
 * rmsNormKernel does (the same bits), and workgroup 0 also stores them to
 * `xn`, the norm's output. Needs `dim`, the norm's weight `nw`, `red` (at
 * least 256 f32) and eps as f32 argument `epsArg`. A norm's 256 threads
 * cost far less than a dispatch of their own (host time per dispatch).
 */
export function normPrologueWgsl(rows: number, rounds: number, vectorised: boolean, epsArg: number): string {
  const store = (i: string, v: string, wt: string) => `let o = ${wt} * (${v} * inv); let e = base + ${i}; ${vectorised ? "x[e >> 2u][e & 3u] = o;" : "x[e] = o;"} if (wg == 0u) { xn[e] = o; }`;
  // NOTE: a barrier after each row: the next row's sums overwrite red[0], which every thread reads for inv
  return `  for (var row = 0u; row < ${rows}u; row++) {
  let base = row * dim;
${normRow(rounds, (i) => `xr[base + ${i}]`, (_, v) => `s += ${v} * ${v};`, (i) => `xr[base + ${i}]`, store, "nw", `af(${epsArg}u)`)}
  workgroupBarrier();
  }`;
}

/**
 * The row's 1 / rms from each thread's partial sum of squares `s`: a tree sum
 * over the workgroup's 256 threads (needs `var<workgroup> red: array<f32, 256>`
 * or longer, and `eps`, an f32 argument). Shared by rmsNorm, add + rmsNorm and the matvec's norm
 * prologue, so the fused kernels stay bit for bit the unfused one.
 */
function invRms(eps: string): string {
  return `  red[lid] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { red[lid] += red[lid + k]; } workgroupBarrier(); }
  let inv = 1.0 / sqrt(red[0] / f32(dim) + ${eps});`;
}

/**
 * out[r, :] = w * (x[r, :] * inv_rms), one workgroup per row; x f32 [rows, dim] (in place: out is x).
 * rounds: normRounds(dim) (the row held in registers), or 0 (any dim). args: rows, dim, eps(f32)
 */
export const rmsNormKernel = memoKernel(function rmsNormKernel(inPlace: boolean, rounds: number): Kernel {
  const bindings: Kernel["bindings"] = inPlace ? ["rw", "ro"] : ["rw", "ro", "ro"];
  const x = inPlace ? "outp" : "xin";
  return kernelOf(rounds === 0 ? "rmsNorm" : `rmsNorm r${rounds}`, bindings, /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<f32>;
${inPlace ? "@group(0) @binding(1) var<storage, read> w: array<f32>;" : "@group(0) @binding(1) var<storage, read> xin: array<f32>;\n@group(0) @binding(2) var<storage, read> w: array<f32>;"}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let dim = au(1u); let base = wg * dim;
${normRow(rounds, (i) => `${x}[base + ${i}]`, (_, v) => `s += ${v} * ${v};`, (i) => `${x}[base + ${i}]`, (i, v, wt) => `outp[base + ${i}] = ${wt} * (${v} * inv);`)}
}`);
});

/** x f32 [rows, heads, 2 * half] rotated in place by the host's cos/sin (cs f32 [rows, 2, half]). args: rows, heads, half */
export const ropeKernel = memoKernel(function ropeKernel(): Kernel {
  return kernelOf("rope", ["rw", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  let rows = au(0u); let heads = au(1u); let half = au(2u);
  if (i >= rows * heads * half) { return; }
  let r = i / (heads * half); let h = (i / half) % heads; let j = i % half;
  let base = (r * heads + h) * 2u * half;
  let c = cs[r * 2u * half + j]; let s = cs[r * 2u * half + half + j];
  let a = x[base + j]; let b = x[base + half + j];
  x[base + j] = a * c - b * s;
  x[base + half + j] = b * c + a * s;
}`);
});

/** out = silu(gate) * up over n floats (in place: out is gate). args: n */
export const siluMulKernel = memoKernel(function siluMulKernel(inPlace: boolean): Kernel {
  const g = inPlace ? "outp" : "gate";
  return kernelOf("siluMul", inPlace ? ["rw", "ro"] : ["rw", "ro", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<f32>;
${inPlace ? "@group(0) @binding(1) var<storage, read> up: array<f32>;" : "@group(0) @binding(1) var<storage, read> gate: array<f32>;\n@group(0) @binding(2) var<storage, read> up: array<f32>;"}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  if (i >= au(0u)) { return; }
  let v = ${g}[i];
  outp[i] = (v / (1.0 + exp(-v))) * up[i];
}`);
});

/** x += y over n floats. args: n */
export const addKernel = memoKernel(function addKernel(): Kernel {
  return kernelOf("add", ["rw", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  if (i >= au(0u)) { return; }
  x[i] = x[i] + y[i];
}`);
});

/** out u32 [n, width][i, :] = x[rowIndex[i], :] (bits). args: n, width */
export const gatherRowsKernel = memoKernel(function gatherRowsKernel(): Kernel {
  return kernelOf("gatherRows", ["rw", "ro", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  let width = au(1u);
  if (i >= au(0u) * width) { return; }
  outp[i] = x[u32(idx[i / width]) * width + i % width];
}`);
});

/**
 * Host bytes (args from word 4, packed) into bytes [first, first + count) of
 * a buffer, one thread per destination word; partial words through atomics,
 * so the bytes around the range keep their values. args: first, count
 */
export const writeBytesKernel = memoKernel(function writeBytesKernel(): Kernel {
  return kernelOf("writeBytes", ["rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> dst: array<atomic<u32>>;
fn srcByte(j: u32) -> u32 { return (au(4u + (j >> 2u)) >> ((j & 3u) * 8u)) & 0xffu; }
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let first = au(0u); let count = au(1u);
  let word = (first >> 2u) + wg * 256u + lid;
  let lo = max(first, word * 4u); let hi = min(first + count, word * 4u + 4u);
  if (lo >= hi) { return; }
  var mask = 0u; var bits = 0u;
  for (var b = lo; b < hi; b++) {
    let sh = (b & 3u) * 8u;
    mask |= 0xffu << sh;
    bits |= srcByte(b - first) << sh;
  }
  if (mask == 0xffffffffu) { atomicStore(&dst[word], bits); return; }
  atomicAnd(&dst[word], ~mask);
  atomicOr(&dst[word], bits);
}`);
});

/** rope of two tensors at the same positions (q and k): x0 [rows, heads0, 2 * half], x1 [rows, heads1, 2 * half]. args: rows, heads0, heads1, half */
export const ropePairKernel = memoKernel(function ropePairKernel(): Kernel {
  return kernelOf("rope pair", ["rw", "rw", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x0: array<f32>;
@group(0) @binding(1) var<storage, read_write> x1: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let rows = au(0u); let h0 = au(1u); let h1 = au(2u); let half = au(3u);
  var i = wg * 256u + lid;
  let n0 = rows * h0 * half;
  if (i >= n0 + rows * h1 * half) { return; }
  let second = i >= n0;
  var heads = h0;
  if (second) { i -= n0; heads = h1; }
  let r = i / (heads * half); let h = (i / half) % heads; let j = i % half;
  let base = (r * heads + h) * 2u * half;
  let c = cs[r * 2u * half + j]; let s = cs[r * 2u * half + half + j];
  if (second) {
    let a = x1[base + j]; let b = x1[base + half + j];
    x1[base + j] = a * c - b * s;
    x1[base + half + j] = b * c + a * s;
  } else {
    let a = x0[base + j]; let b = x0[base + half + j];
    x0[base + j] = a * c - b * s;
    x0[base + half + j] = b * c + a * s;
  }
}`);
});

/**
 * x += y, then out = rmsNorm(x) * w (the residual add and the next block's
 * norm), one workgroup per row; the same arithmetic as addKernel then
 * rmsNormKernel. In place: out is x. args: rows, dim, eps (f32)
 */
export const addRmsNormKernel = memoKernel(function addRmsNormKernel(inPlace: boolean, rounds: number): Kernel {
  const bindings: Kernel["bindings"] = inPlace ? ["rw", "ro", "ro"] : ["rw", "ro", "rw", "ro"];
  return kernelOf(rounds === 0 ? "add + rmsNorm" : `add + rmsNorm r${rounds}`, bindings, /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
${inPlace ? "@group(0) @binding(2) var<storage, read> w: array<f32>;" : "@group(0) @binding(2) var<storage, read_write> outp: array<f32>;\n@group(0) @binding(3) var<storage, read> w: array<f32>;"}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let dim = au(1u); let base = wg * dim;
${normRow(rounds, (i) => `x[base + ${i}] + y[base + ${i}]`, (i, v) => `x[base + ${i}] = ${v}; s += ${v} * ${v};`, (i) => `x[base + ${i}]`, (i, v, wt) => `${inPlace ? "x" : "outp"}[base + ${i}] = ${wt} * (${v} * inv);`)}
}`);
});
