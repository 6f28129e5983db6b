/**
 * @module train/webgpu/gateBackwardKernels
 *
 * The write gate's backward from dLogG, in three kernels so that each output
 * has one writer (WGSL has no float atomics):
 *
 *   1. dz = dLogG (1 - g) where g is above its floor, else 0    a thread per (h, t)
 *   2. per (token, KV head): da = dz w2 GELU'(a), dx = da W1,  a workgroup each
 *      then both key norms' backward into dKPre, dKPost (+=)
 *   3. the parameter gradients, sums over tokens                 a thread per parameter
 *
 * They meet in one scratch buffer (f32), laid out by gateScratchLayout:
 *   dz [H, T] | da [H, T, E] | dx [H, T, 2d] | rstd [H, T, 2] (the key norms')
 */
import { GELU_WGSL } from "../../backends/webgpu/kernels/gateKernels.js";
import { MAIN_ARGS, WG_INDEX } from "../../backends/webgpu/kernels/wgslCommon.js";
import { GATE_OFFSETS_WGSL, REDUCE64_WGSL } from "./gateForwardKernel.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

export function gateScratchLayout(T: number, H: number, d: number, E: number) {
  const da = H * T, dx = da + H * T * E, rstd = dx + H * T * 2 * d;
  return { da, dx, rstd, size: rstd + H * T * 2 };
}

/** GELU'(a) = Phi(a) + a phi(a), Phi with the forward's erf (Abramowitz & Stegun 7.1.26). */
const GELU_GRAD_WGSL = /* wgsl */ `
fn geluGrad(a: f32) -> f32 {
  let xx = abs(a) * 0.7071067811865476;
  let t = 1.0 / (1.0 + 0.3275911 * xx);
  let q = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  let erfc = q * exp(-xx * xx);
  return 0.5 * select(erfc, 2.0 - erfc, a >= 0.0) + a * 0.3989422804014327 * exp(-0.5 * a * a);
}`;

/** scratch[n] = dz for n < H T; g, dLogG [H, T]. NOTE: g at its floor reads fround(1e-3), the literal's f32. args: n */
export function gateDzKernel() {
  const list = [["scratch", "rw"], ["g", "ro"], ["dLogG", "ro"]] as const;
  return trainKernel("gate dz", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let n = wg * 64u + lid;
  if (n >= au(0u)) { return; }
  let gv = g[n];
  scratch[n] = select(0.0, dLogG[n] * (1.0 - gv), gv > 1e-3);
}`);
}

/**
 * dKPre, dKPost f32 [T, H, d] += the key gradients; scratch's da, dx and rstd written.
 * a [H, T, E]; kPre, kPost [T, H, d]; params flat.
 * args: T, H, E, the layer's offsets (6), then scratch's da, dx, rstd offsets
 */
export function gateTokenBackwardKernel(d: number, E: number) {
  const list = [["dKPre", "rw"], ["dKPost", "rw"], ["scratch", "rw"], ["a", "ro"], ["kPre", "ro"], ["kPost", "ro"], ["params", "ro"]] as const;
  return trainKernel(`gate backward d${d} E${E}`, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${GATE_OFFSETS_WGSL}
${REDUCE64_WGSL}
${GELU_GRAD_WGSL}
const D = ${d}u;
const E = ${E}u;
var<workgroup> das: array<f32, ${E}>;
var<workgroup> dxs: array<f32, ${2 * d}>;
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let T = au(0u); let H = au(1u);
  if (wg >= T * H) { return; }
  let t = wg / H; let h = wg % H; let n = h * T + t;
  let offDa = au(9u); let offDx = au(10u); let offRstd = au(11u);
  let dz = scratch[n];
  for (var e = lid; e < E; e += 64u) {
    let da = dz * params[offW2() + h * E + e] * geluGrad(a[n * E + e]);
    das[e] = da;
    scratch[offDa + n * E + e] = da;
  }
  workgroupBarrier();
  for (var j = lid; j < 2u * D; j += 64u) {
    var s = 0.0;
    for (var e = 0u; e < E; e++) { s += das[e] * params[offW1() + (h * E + e) * 2u * D + j]; }
    dxs[j] = s;
    scratch[offDx + n * 2u * D + j] = s;
  }
  workgroupBarrier();
  // the key norms' backward: dk = rstd (w dx - n c), n = k rstd, c = mean(w dx n)
  let kb = (t * H + h) * D;
  var s1 = 0.0; var s2 = 0.0; var p1 = 0.0; var p2 = 0.0;
  for (var c = lid; c < D; c += 64u) {
    let k1 = kPre[kb + c]; let k2 = kPost[kb + c];
    s1 += k1 * k1; s2 += k2 * k2;
    p1 += params[offPre() + c] * dxs[c] * k1;
    p2 += params[offPost() + c] * dxs[D + c] * k2;
  }
  let r1 = 1.0 / sqrt(reduceSum(lid, s1) / f32(D) + 1e-6);
  let r2 = 1.0 / sqrt(reduceSum(lid, s2) / f32(D) + 1e-6);
  let c1 = reduceSum(lid, p1) * r1 / f32(D);
  let c2 = reduceSum(lid, p2) * r2 / f32(D);
  for (var c = lid; c < D; c += 64u) {
    dKPre[kb + c] = dKPre[kb + c] + r1 * (params[offPre() + c] * dxs[c] - kPre[kb + c] * r1 * c1);
    dKPost[kb + c] = dKPost[kb + c] + r2 * (params[offPost() + c] * dxs[D + c] - kPost[kb + c] * r2 * c2);
  }
  if (lid == 0u) { scratch[offRstd + n * 2u] = r1; scratch[offRstd + n * 2u + 1u] = r2; }
}`);
}

/**
 * dParams (flat) += the layer's parameter gradients, one thread per parameter of the
 * layer, in the order pre norm [d], post norm [d], W1 [H E, 2d], b1 [H E], w2 [H E], b2 [H].
 * x [H, T, 2d], a [H, T, E], kPre, kPost [T, H, d].
 * args: as gateTokenBackwardKernel's, then the layer's parameter count
 */
export function gateParamGradKernel(d: number) {
  const list = [["dParams", "rw"], ["scratch", "ro"], ["a", "ro"], ["x", "ro"], ["kPre", "ro"], ["kPost", "ro"]] as const;
  return trainKernel(`gate parameter gradients d${d}`, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${GATE_OFFSETS_WGSL}
${GELU_WGSL}
const D = ${d}u;
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let p = wg * 64u + lid;
  if (p >= au(12u)) { return; }
  let T = au(0u); let H = au(1u); let E = au(2u);
  let offDa = au(9u); let offDx = au(10u); let offRstd = au(11u);
  let nW1 = H * E * 2u * D;
  var s = 0.0;
  var dst = 0u;
  if (p < 2u * D) {
    // a key norm's weight: sum over (h, t) of dx n, n = k rstd
    let half = p / D; let i = p % D;
    dst = select(offPre(), offPost(), half == 1u) + i;
    for (var h = 0u; h < H; h++) {
      for (var t = 0u; t < T; t++) {
        let n = h * T + t; let kb = (t * H + h) * D + i;
        let k = select(kPre[kb], kPost[kb], half == 1u);
        s += scratch[offDx + n * 2u * D + p] * k * scratch[offRstd + n * 2u + half];
      }
    }
  } else if (p < 2u * D + nW1) {
    let q = p - 2u * D; let he = q / (2u * D); let j = q % (2u * D);
    let h = he / E; let e = he % E;
    dst = offW1() + q;
    for (var t = 0u; t < T; t++) { let n = h * T + t; s += scratch[offDa + n * E + e] * x[n * 2u * D + j]; }
  } else if (p < 2u * D + nW1 + 2u * H * E) {
    let q = (p - 2u * D - nW1) % (H * E); let isW2 = p - 2u * D - nW1 >= H * E;
    let h = q / E; let e = q % E;
    dst = select(offB1(), offW2(), isW2) + q;
    for (var t = 0u; t < T; t++) {
      let n = h * T + t;
      s += select(scratch[offDa + n * E + e], scratch[n] * gelu(a[n * E + e]), isW2);
    }
  } else {
    let h = p - 2u * D - nW1 - 2u * H * E;
    dst = offB2() + h;
    for (var t = 0u; t < T; t++) { s += scratch[h * T + t]; }
  }
  dParams[dst] = dParams[dst] + s;
}`);
}
