/**
 * @module train/webgpu/gateForwardKernel
 *
 * The write gate of one layer, forward, keeping what its backward needs
 * (train/trainOps.ts's GateActivations). The inference gate kernel's shape
 * (backends/webgpu/kernels/gateKernels.ts), and its GELU: one workgroup per
 * (token, KV head) normalises both keys into x (workgroup memory and the
 * x activation), runs W1 (a thread per hidden unit), the GELU, W2 and the
 * sigmoid floored at 1e-3. Parameters come from the flat gate buffer at the
 * layer's offsets (args), so one buffer holds every layer, as the optimizer
 * sees it. f32 throughout.
 */
import { GELU_WGSL } from "../../backends/webgpu/kernels/gateKernels.js";
import { MAIN_ARGS, WG_INDEX, workgroupSumWgsl } from "../../backends/webgpu/kernels/wgslCommon.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

/** Offsets of a layer's parts in the flat parameter buffer, as args 3..8. */
export const GATE_OFFSETS_WGSL = /* wgsl */ `
fn offPre() -> u32 { return au(3u); }
fn offPost() -> u32 { return au(4u); }
fn offW1() -> u32 { return au(5u); }
fn offB1() -> u32 { return au(6u); }
fn offW2() -> u32 { return au(7u); }
fn offB2() -> u32 { return au(8u); }`;

/** A workgroup sum of 64 threads (uniform result; red is free again on return). */
export const REDUCE64_WGSL = workgroupSumWgsl(64);
/**
 * x f32 [H, T, 2d], a [H, T, E], g, logG [H, T]; kPre, kPost [T, H, d]; params flat.
 * args: T, H, E, then the layer's offsets (pre norm, post norm, W1, b1, w2, b2)
 */
export function gateForwardKernel(d: number) {
  const list = [["x", "rw"], ["a", "rw"], ["g", "rw"], ["logG", "rw"], ["kPre", "ro"], ["kPost", "ro"], ["params", "ro"]] as const;
  return trainKernel(`gate forward d${d}`, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${GATE_OFFSETS_WGSL}
${REDUCE64_WGSL}
${GELU_WGSL}
const D = ${d}u;
var<workgroup> xs: array<f32, ${2 * d}>;
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let T = au(0u); let H = au(1u); let E = au(2u);
  if (wg >= T * H) { return; }
  let t = wg / H; let h = wg % H; let n = h * T + t;
  let kb = (t * H + h) * D;
  var s1 = 0.0; var s2 = 0.0;
  for (var c = lid; c < D; c += 64u) { s1 += kPre[kb + c] * kPre[kb + c]; s2 += kPost[kb + c] * kPost[kb + c]; }
  let inv1 = 1.0 / sqrt(reduceSum(lid, s1) / f32(D) + 1e-6);
  let inv2 = 1.0 / sqrt(reduceSum(lid, s2) / f32(D) + 1e-6);
  for (var c = lid; c < D; c += 64u) {
    xs[c] = kPre[kb + c] * inv1 * params[offPre() + c];
    xs[D + c] = kPost[kb + c] * inv2 * params[offPost() + c];
    x[n * 2u * D + c] = xs[c];
    x[n * 2u * D + D + c] = xs[D + c];
  }
  workgroupBarrier();
  var z = 0.0;
  for (var e = lid; e < E; e += 64u) {
    let r = h * E + e;
    var acc = params[offB1() + r];
    for (var j = 0u; j < 2u * D; j++) { acc += params[offW1() + r * 2u * D + j] * xs[j]; }
    a[n * E + e] = acc;
    z += params[offW2() + r] * gelu(acc);
  }
  let zz = reduceSum(lid, z) + params[offB2() + h];
  if (lid == 0u) {
    let gv = max(1.0 / (1.0 + exp(-zz)), 1e-3);
    g[n] = gv;
    logG[n] = log(gv);
  }
}`);
}
