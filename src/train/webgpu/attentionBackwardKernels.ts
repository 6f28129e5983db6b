/**
 * @module train/webgpu/attentionBackwardKernels
 *
 * The backward of attentionForwardKernel.ts, flash-attention style: the
 * probabilities are rebuilt from the scores and the saved log-normalizers,
 * P_ij = exp(s_ij - lse_i), never stored. With D_i = dO_i . O_i and
 * dS_ij = P_ij (dO_i . v_j - D_i):
 *
 *   dq_i = scale sum_j dS_ij k_j          one workgroup per (query token, query head)
 *   dk_j = scale sum_i dS_ij q_i          one workgroup per (key token, KV head),
 *   dv_j = sum_i P_ij dO_i                  its rows i >= j of the G query heads
 *   dlog g_j = sum over i - j >= W of dS_ij
 *
 * Each output has one writer (no float atomics, which WGSL lacks), at the
 * price of computing the scores twice. Rows go by in chunks of 64, one
 * score per thread, then each thread adds its columns of the chunk.
 *
 * Row statistics travel in one scratch buffer ("rowStats", f32), so no
 * kernel binds more than 8 storage buffers (WebGPU's default limit):
 *   [0, T Hq)                Dr  [T, Hq]       D_i per (token, query head)
 *   [T Hq, 2 T Hq)           lse [Hkv, T, G]   copied from the forward
 *   [2 T Hq, + Hkv T)        logG [Hkv, T]     copied in (gated)
 *   [2 T Hq + Hkv T, + Hkv T) dLogG [Hkv, T]   written here, copied out
 */
import { MAIN_ARGS, WG_INDEX } from "../../backends/webgpu/kernels/wgslCommon.js";
import { NEG } from "./attentionForwardKernel.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

/** The sections of rowStats (in floats). */
export function rowStatsLayout(T: number, Hq: number, Hkv: number) {
  return { lse: T * Hq, logG: 2 * T * Hq, dLogG: 2 * T * Hq + Hkv * T, size: 2 * T * Hq + 2 * Hkv * T };
}

/** rowStats[r] = dO[r, :] . O[r, :] for r < rows (rows of d floats). args: rows, d */
export function rowDotKernel() {
  const list = [["rowStats", "rw"], ["dO", "ro"], ["O", "ro"]] as const;
  return trainKernel("attention rowDot", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let r = wg * 64u + lid; let d = au(1u);
  if (r >= au(0u)) { return; }
  var s = 0.0;
  for (var c = 0u; c < d; c++) { s += dO[r * d + c] * O[r * d + c]; }
  rowStats[r] = s;
}`);
}

/** WGSL of the common arguments and the score of (row i, head hq) against key j. */
const SCORE = /* wgsl */ `
fn bias(i: u32, j: u32, h: u32) -> f32 {
  let T = au(0u);
  if (au(5u) == 1u && i - j >= au(3u)) { return rowStats[2u * T * au(1u) + h * T + j]; }
  return 0.0;
}
fn lseOf(i: u32, hq: u32) -> f32 {
  let T = au(0u); let Hq = au(1u); let G = Hq / au(2u);
  return rowStats[T * Hq + ((hq / G) * T + i) * G + hq % G];
}`;

/**
 * dq f32 [T, Hq, d]; q [T, Hq, d], k, v [T, Hkv, d], dO [T, Hq, d].
 * args: T, Hq, Hkv, W, scale (f32), gated
 */
export function attentionDqKernel(d: number) {
  const NC = Math.ceil(d / 64);
  const list = [["dq", "rw"], ["rowStats", "ro"], ["q", "ro"], ["k", "ro"], ["v", "ro"], ["dO", "ro"]] as const;
  return trainKernel(`attention dq d${d}`, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${SCORE}
const D = ${d}u;
const NC = ${NC}u;
var<workgroup> qs: array<f32, ${d}>;
var<workgroup> gs: array<f32, ${d}>;
var<workgroup> dss: array<f32, 64>;
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let T = au(0u); let Hq = au(1u); let Hkv = au(2u); let G = Hq / Hkv;
  if (wg >= T * Hq) { return; }
  let i = wg / Hq; let hq = wg % Hq; let h = hq / G; let scale = af(4u);
  let qb = (i * Hq + hq) * D;
  for (var c = lid; c < D; c += 64u) { qs[c] = q[qb + c]; gs[c] = dO[qb + c]; }
  workgroupBarrier();
  let L = lseOf(i, hq); let Di = rowStats[i * Hq + hq];
  var acc: array<f32, ${NC}>;
  for (var j0 = 0u; j0 <= i; j0 += 64u) {
    let j = j0 + lid;
    var ds = 0.0;
    if (j <= i) {
      let kb = (j * Hkv + h) * D;
      var qk = 0.0; var dp = 0.0;
      for (var c = 0u; c < D; c++) { qk += qs[c] * k[kb + c]; dp += gs[c] * v[kb + c]; }
      let p = exp(qk * scale + bias(i, j, h) - L);
      ds = p * (dp - Di);
    }
    dss[lid] = ds;
    workgroupBarrier();
    let cnt = min(64u, i + 1u - j0);
    for (var jj = 0u; jj < cnt; jj++) {
      let kb = ((j0 + jj) * Hkv + h) * D;
      for (var t = 0u; t < NC; t++) {
        let c = lid + t * 64u;
        if (c < D) { acc[t] += dss[jj] * k[kb + c]; }
      }
    }
    workgroupBarrier();
  }
  for (var t = 0u; t < NC; t++) {
    let c = lid + t * 64u;
    if (c < D) { dq[qb + c] = scale * acc[t]; }
  }
}`);
}

/**
 * dk, dv f32 [T, Hkv, d], and rowStats' dLogG section; inputs as attentionDqKernel.
 * args: T, Hq, Hkv, W, scale (f32), gated
 */
export function attentionDkvKernel(d: number) {
  const NC = Math.ceil(d / 64);
  const list = [["dk", "rw"], ["dv", "rw"], ["rowStats", "rw"], ["q", "ro"], ["k", "ro"], ["v", "ro"], ["dO", "ro"]] as const;
  return trainKernel(`attention dkv d${d}`, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${SCORE}
const D = ${d}u;
const NC = ${NC}u;
var<workgroup> ks: array<f32, ${d}>;
var<workgroup> vs: array<f32, ${d}>;
var<workgroup> ps: array<f32, 64>;
var<workgroup> dss: array<f32, 64>;
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let T = au(0u); let Hq = au(1u); let Hkv = au(2u); let G = Hq / Hkv;
  if (wg >= T * Hkv) { return; }
  let j = wg / Hkv; let h = wg % Hkv; let scale = af(4u); let W = au(3u); let gated = au(5u) == 1u;
  let kb = (j * Hkv + h) * D;
  for (var c = lid; c < D; c += 64u) { ks[c] = k[kb + c]; vs[c] = v[kb + c]; }
  workgroupBarrier();
  // rows (i, g) for i >= j: row r is token j + r / G, query head h G + r % G
  let nrows = (T - j) * G;
  var dka: array<f32, ${NC}>;
  var dva: array<f32, ${NC}>;
  var gsum = 0.0;
  for (var r0 = 0u; r0 < nrows; r0 += 64u) {
    let r = r0 + lid;
    var p = 0.0; var ds = 0.0;
    if (r < nrows) {
      let i = j + r / G; let hq = h * G + r % G; let qb = (i * Hq + hq) * D;
      var qk = 0.0; var dp = 0.0;
      for (var c = 0u; c < D; c++) { qk += q[qb + c] * ks[c]; dp += dO[qb + c] * vs[c]; }
      p = exp(qk * scale + bias(i, j, h) - lseOf(i, hq));
      ds = p * (dp - rowStats[i * Hq + hq]);
      if (gated && i - j >= W) { gsum += ds; }
    }
    ps[lid] = p; dss[lid] = ds;
    workgroupBarrier();
    let cnt = min(64u, nrows - r0);
    for (var rr = 0u; rr < cnt; rr++) {
      let row = r0 + rr;
      let qb = ((j + row / G) * Hq + h * G + row % G) * D;
      for (var t = 0u; t < NC; t++) {
        let c = lid + t * 64u;
        if (c < D) { dka[t] += dss[rr] * q[qb + c]; dva[t] += ps[rr] * dO[qb + c]; }
      }
    }
    workgroupBarrier();
  }
  for (var t = 0u; t < NC; t++) {
    let c = lid + t * 64u;
    if (c < D) { dk[kb + c] = scale * dka[t]; dv[kb + c] = dva[t]; }
  }
  // the gate's share: a tree sum of the threads' dS over rows outside the window
  ps[lid] = gsum;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) { if (lid < s) { ps[lid] += ps[lid + s]; } workgroupBarrier(); }
  if (lid == 0u) { rowStats[2u * T * Hq + Hkv * T + h * T + j] = ps[0]; }
}`);
}
