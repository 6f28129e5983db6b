/**
 * @module train/webgpu/inputGradKernel
 *
 * The input gradient of a frozen Linear layer: dx [rows, K] (+)= dy [rows, N]
 * · w [N, K], with w stored as Hugging Face keeps it (row-major [N, K], f32
 * or bf16). The weight is read down its columns in the tile loads, so no
 * transposed copy of it is ever made (the backbone's weights are the bulk of
 * the memory). 64 x 64 output tiles, 16-deep slices of dy and w in workgroup
 * memory, 4 x 4 outputs per thread, f32 arithmetic; `accumulate` adds to dx
 * (a residual stream's gradient summed over branches).
 *
 * args: rows, K (outputs per row), N (the reduced dim), unused
 */
import type { Kernel } from "../../backends/webgpu/gpuRuntime.js";
import { MATMUL_BINDINGS, matmulKernelOf, weightAt, type WeightType } from "../../backends/webgpu/kernels/matmulKernels.js";
import { MAIN_ARGS, WG_INDEX } from "../../backends/webgpu/kernels/wgslCommon.js";

/** Workgroups of the kernel over dx [rows, K]. */
export function inputGradGroups(rows: number, K: number): number {
  return Math.ceil(rows / 64) * Math.ceil(K / 64);
}

export function inputGradKernel(wType: WeightType, accumulate: boolean): Kernel {
  const prior = accumulate ? "outp[m * K + k] + " : "";
  return matmulKernelOf(`matmul input grad ${wType}${accumulate ? " accumulate" : ""}`, /* wgsl */ `
${MATMUL_BINDINGS("array<u32>", "array<f32>")}
${weightAt(wType)}
var<workgroup> ys: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let rows = au(0u); let K = au(1u); let N = au(2u);
  let tk = (K + 63u) / 64u;
  let m0 = (wg / tk) * 64u; let k0 = (wg % tk) * 64u;
  let tx = lid % 16u; let ty = lid / 16u;
  var acc: array<f32, 16>;
  for (var n0 = 0u; n0 < N; n0 += 16u) {
    for (var i = 0u; i < 4u; i++) {
      let e = lid + i * 256u; let mm = e / 16u; let nn = e % 16u;
      ys[e] = select(0.0, x[(m0 + mm) * N + n0 + nn], m0 + mm < rows && n0 + nn < N);
      // w[n, k] for k = k0 + mm: the weight's column k, read down its rows
      ws[e] = select(0.0, wAt((n0 + nn) * K + k0 + mm), k0 + mm < K && n0 + nn < N);
    }
    workgroupBarrier();
    for (var nn = 0u; nn < 16u; nn++) {
      let a = vec4<f32>(ys[(ty * 4u) * 16u + nn], ys[(ty * 4u + 1u) * 16u + nn], ys[(ty * 4u + 2u) * 16u + nn], ys[(ty * 4u + 3u) * 16u + nn]);
      let b = vec4<f32>(ws[(tx * 4u) * 16u + nn], ws[(tx * 4u + 1u) * 16u + nn], ws[(tx * 4u + 2u) * 16u + nn], ws[(tx * 4u + 3u) * 16u + nn]);
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
      let k = k0 + tx * 4u + j;
      if (k < K) { outp[m * K + k] = ${prior}acc[i * 4u + j]; }
    }
  }
}`);
}
