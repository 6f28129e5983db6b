/**
 * @module train/webgpu/attentionForwardKernel
 *
 * Soft-gated causal attention, forward (train/trainOps.ts's `attention`):
 * one workgroup of 64 threads per (query token i, query head). The keys
 * j <= i go by in chunks of 64, one score per thread (q sits in workgroup
 * memory), then an online softmax (running max and sum, the accumulator
 * rescaled when the max grows) adds the chunk's values, each thread owning
 * columns lid, lid + 64, ... of the output row. Scores get + log g_j where
 * i - j >= W. Each row's log-normalizer m + log(l) is kept for the backward.
 * f32 throughout; no T x T matrix exists anywhere.
 *
 * The head dim is baked in (a per-thread accumulator of ceil(d / 64) floats).
 */
import { MAIN_ARGS, WG_INDEX } from "../../backends/webgpu/kernels/wgslCommon.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

/** "Minus infinity" for scores (WGSL has no infinity literal); exp of anything minus it is 0. */
export const NEG = "-3.0e38";

/**
 * out f32 [T, Hq, d], lse f32 [Hkv, T, G]; q [T, Hq, d], k, v [T, Hkv, d], logG [Hkv, T] (a dummy when off).
 * args: T, Hq, Hkv, W, scale (f32), gated
 */
export function attentionForwardKernel(d: number) {
  const NC = Math.ceil(d / 64);
  const list = [["outp", "rw"], ["lse", "rw"], ["q", "ro"], ["k", "ro"], ["v", "ro"], ["logG", "ro"]] as const;
  return trainKernel(`attention d${d}`, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
const D = ${d}u;
const NC = ${NC}u;
var<workgroup> qs: array<f32, ${d}>;
var<workgroup> ps: array<f32, 64>;
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let T = au(0u); let Hq = au(1u); let Hkv = au(2u); let G = Hq / Hkv;
  if (wg >= T * Hq) { return; }
  let i = wg / Hq; let hq = wg % Hq; let h = hq / G;
  let W = au(3u); let scale = af(4u); let gated = au(5u) == 1u;
  let qb = (i * Hq + hq) * D;
  for (var c = lid; c < D; c += 64u) { qs[c] = q[qb + c]; }
  workgroupBarrier();
  var m = ${NEG};
  var l = 0.0;
  var acc: array<f32, ${NC}>;
  for (var j0 = 0u; j0 <= i; j0 += 64u) {
    let j = j0 + lid;
    var s = ${NEG};
    if (j <= i) {
      let kb = (j * Hkv + h) * D;
      var dot = 0.0;
      for (var c = 0u; c < D; c++) { dot += qs[c] * k[kb + c]; }
      s = dot * scale;
      if (gated && i - j >= W) { s += logG[h * T + j]; }
    }
    ps[lid] = s;
    workgroupBarrier();
    let cnt = min(64u, i + 1u - j0);
    var cm = m;
    for (var jj = 0u; jj < cnt; jj++) { cm = max(cm, ps[jj]); }
    // NOTE: the first chunk has a visible key (j0 <= i), so cm is a real score and corr is 0 or finite
    let corr = exp(m - cm);
    l *= corr;
    for (var t = 0u; t < NC; t++) { acc[t] *= corr; }
    for (var jj = 0u; jj < cnt; jj++) {
      let p = exp(ps[jj] - cm);
      l += p;
      let vb = ((j0 + jj) * Hkv + h) * D;
      for (var t = 0u; t < NC; t++) {
        let c = lid + t * 64u;
        if (c < D) { acc[t] += p * v[vb + c]; }
      }
    }
    m = cm;
    workgroupBarrier();
  }
  for (var t = 0u; t < NC; t++) {
    let c = lid + t * 64u;
    if (c < D) { outp[qb + c] = acc[t] / l; }
  }
  if (lid == 0u) { lse[(h * T + i) * G + hq % G] = m + log(l); }
}`);
}
