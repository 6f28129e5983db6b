/**
 * @module train/webgpu/normKernels
 *
 * RMSNorm's backward (the forward is the inference kernel, rmsNormKernel).
 * Per row, with n = x rstd and rstd = 1 / sqrt(mean(x^2) + eps):
 *
 *   dx = rstd (w dy - n c),  c = mean(w dy n)        one workgroup per row
 *   dw += sum over rows of dy n                      one thread per column
 *
 * The row kernel saves each row's rstd for the column kernel, which then
 * sums down the rows without recomputing norms.
 */
import { MAIN_ARGS, WG_INDEX } from "../../backends/webgpu/kernels/wgslCommon.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

/**
 * dx f32 [rows, dim] (+)= the input gradient at x [rows, dim] for dy [rows, dim];
 * w f32 [dim]; rstd f32 [rows] written when asked.
 * args: rows, dim, eps (f32), accumulate, saveRstd
 */
export function rmsNormBackwardKernel() {
  const list = [["dx", "rw"], ["dy", "ro"], ["x", "ro"], ["w", "ro"], ["rstdOut", "rw"]] as const;
  return trainKernel("rmsNormBackward", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
var<workgroup> r1: array<f32, 256>;
var<workgroup> r2: array<f32, 256>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let dim = au(1u); let base = wg * dim;
  var ss = 0.0; var dot = 0.0;
  for (var i = lid; i < dim; i += 256u) { let v = x[base + i]; ss += v * v; dot += w[i] * dy[base + i] * v; }
  r1[lid] = ss; r2[lid] = dot;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) { r1[lid] += r1[lid + k]; r2[lid] += r2[lid + k]; }
    workgroupBarrier();
  }
  let rstd = 1.0 / sqrt(r1[0] / f32(dim) + af(2u));
  // c = mean(w dy n) = rstd * mean(w dy x)
  let c = r2[0] * rstd / f32(dim);
  let acc = au(3u) == 1u;
  for (var i = lid; i < dim; i += 256u) {
    let g = rstd * (w[i] * dy[base + i] - x[base + i] * rstd * c);
    dx[base + i] = select(g, dx[base + i] + g, acc);
  }
  if (lid == 0u && au(4u) == 1u) { rstdOut[wg] = rstd; }
}`);
}

/** dw f32 [dim] += sum over rows of dy x rstd; dy, x [rows, dim], rstd [rows]. args: rows, dim */
export function rmsNormWeightGradKernel() {
  const list = [["dw", "rw"], ["dy", "ro"], ["x", "ro"], ["rstd", "ro"]] as const;
  return trainKernel("rmsNormWeightGrad", accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 64u + lid;
  let rows = au(0u); let dim = au(1u);
  if (i >= dim) { return; }
  var s = 0.0;
  for (var r = 0u; r < rows; r++) { s += dy[r * dim + i] * x[r * dim + i] * rstd[r]; }
  dw[i] = dw[i] + s;
}`);
}
