/**
 * @module train/webgpu/lossKernels
 *
 * The loss terms and the admitted count, each one workgroup of 256 threads:
 * the sums land in one slot of the stats buffer, and a single workgroup
 * needs no float atomics (WGSL has none) for that. They run once per sample
 * and layer over O(T H) values, so one workgroup is no bottleneck.
 */
import { MAIN_ARGS } from "../../backends/webgpu/kernels/wgslCommon.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

/** A tree sum over the workgroup: the total in red[0] after the call (all threads). */
const REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, 256>;
fn total(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { red[lid] += red[lid + k]; } workgroupBarrier(); }
  return red[0];
}`;

/**
 * stats[slot] = mean((y - target)^2) over n; dy = scale * 2 (y - target) / n.
 * In place (dy is y: WebGPU refuses one buffer in two writable bindings), y is read from dy,
 * each thread reading its element before writing it. args: n, scale (f32), slot
 */
export function mseKernel(inPlace: boolean) {
  const list = inPlace ? ([["dy", "rw"], ["tgt", "ro"], ["stats", "rw"]] as const) : ([["dy", "rw"], ["y", "ro"], ["tgt", "ro"], ["stats", "rw"]] as const);
  return trainKernel("mse", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${REDUCE}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  let n = au(0u); let scale = af(1u);
  var s = 0.0;
  for (var i = lid; i < n; i += 256u) {
    let diff = ${inPlace ? "dy" : "y"}[i] - tgt[i];
    s += diff * diff;
    dy[i] = scale * 2.0 * diff / f32(n);
  }
  let sum = total(lid, s);
  if (lid == 0u) { stats[au(2u)] = sum / f32(n); }
}`);
}

/**
 * The sparsity term of one layer, g f32 [H, T]: stats[slot] += sum of o_s + (1 - o_s)(1 - (g - 1)^2),
 * o_s = min(1, W / (T - s)); dLogG [H, T] += weight (1 - o_s) (-2 (g - 1) g).
 * args: T, H, W, weight (f32), slot
 */
export function sparsityKernel() {
  const list = [["dLogG", "rw"], ["g", "ro"], ["stats", "rw"]] as const;
  return trainKernel("sparsity", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${REDUCE}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  let T = au(0u); let n = T * au(1u); let W = f32(au(2u)); let weight = af(3u);
  var s = 0.0;
  for (var i = lid; i < n; i += 256u) {
    let o = min(1.0, W / f32(T - i % T));
    let gt = g[i];
    s += o + (1.0 - o) * (1.0 - (gt - 1.0) * (gt - 1.0));
    dLogG[i] = dLogG[i] + weight * (1.0 - o) * -2.0 * (gt - 1.0) * gt;
  }
  let sum = total(lid, s);
  if (lid == 0u) { stats[au(4u)] = stats[au(4u)] + sum; }
}`);
}

/** stats[slot] += the number of g [n] above tau (f32, as the engine's admission compares). args: n, tau (f32), slot */
export function countAboveKernel() {
  const list = [["g", "ro"], ["stats", "rw"]] as const;
  return trainKernel("countAbove", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
${REDUCE}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  let n = au(0u); let tau = af(1u);
  var c = 0.0;
  for (var i = lid; i < n; i += 256u) { c += select(0.0, 1.0, g[i] > tau); }
  let sum = total(lid, c);
  if (lid == 0u) { stats[au(2u)] = stats[au(2u)] + sum; }
}`);
}
