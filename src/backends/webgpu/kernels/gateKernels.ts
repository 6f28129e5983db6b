/**
 * @module backends/webgpu/kernels/gateKernels
 *
 * The write gate (docs/design.md §7) fused: one workgroup per (token, KV
 * head) normalises both keys, runs W1 with the exact-erf GELU (Abramowitz &
 * Stegun 7.1.26 written as the wasm kernel writes it, so it never subtracts
 * nearly equal numbers), W2 and the sigmoid, in f32. The layer's weights are
 * packed as cpu/gateLayout.ts lays them out:
 *   preNorm[d], postNorm[d], w1[H, E, 2d], b1[H, E], w2[H, E], b2[H]
 * args: offset, stride, row0, numRows, H, d, E
 */
import type { Kernel } from "../gpuRuntime.js";
import { MAIN_ARGS, WG_INDEX, memoKernel, workgroupSumWgsl } from "./wgslCommon.js";

/** The exact-erf GELU in f32 (also the gate trainer's, train/webgpu/). */
export const GELU_WGSL = /* wgsl */ `fn gelu(a: f32) -> f32 {
  let xx = abs(a) * 0.7071067811865476;
  let t = 1.0 / (1.0 + 0.3275911 * xx);
  let q = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  let erfc = q * exp(-xx * xx);
  return 0.5 * a * select(erfc, 2.0 - erfc, a >= 0.0);
}
`;

let cached: Kernel | null = null;

export const gateKernel = memoKernel(function gateKernel(): Kernel {
  return (cached ??= {
    label: "gateScores",
    bindings: ["rw", "ro", "ro", "ro"],
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> scores: array<f32>;
@group(0) @binding(1) var<storage, read> kPre: array<f32>;
@group(0) @binding(2) var<storage, read> kPost: array<f32>;
@group(0) @binding(3) var<storage, read> gw: array<f32>;
var<workgroup> x: array<f32, 1024>;
${workgroupSumWgsl(128)}
${GELU_WGSL}@compute @workgroup_size(128) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let H = au(4u); let d = au(5u); let E = au(6u);
  if (wg >= au(3u) * H) { return; }
  let t = au(2u) + wg / H; let h = wg % H;
  let kb = (t * H + h) * d;
  var s1 = 0.0; var s2 = 0.0;
  for (var c = lid; c < d; c += 128u) { s1 += kPre[kb + c] * kPre[kb + c]; s2 += kPost[kb + c] * kPost[kb + c]; }
  let inv1 = 1.0 / sqrt(reduceSum(lid, s1) / f32(d) + 1e-6);
  let inv2 = 1.0 / sqrt(reduceSum(lid, s2) / f32(d) + 1e-6);
  for (var c = lid; c < d; c += 128u) {
    x[c] = kPre[kb + c] * inv1 * gw[c];
    x[d + c] = kPost[kb + c] * inv2 * gw[d + c];
  }
  workgroupBarrier();
  let w1 = 2u * d; let b1 = w1 + H * E * 2u * d; let w2 = b1 + H * E; let b2 = w2 + H * E;
  var z = 0.0;
  for (var i = lid; i < E; i += 128u) {
    let r = h * E + i;
    var acc = gw[b1 + r];
    for (var j = 0u; j < 2u * d; j++) { acc += gw[w1 + r * 2u * d + j] * x[j]; }
    z += gw[w2 + r] * gelu(acc);
  }
  let zz = reduceSum(lid, z) + gw[b2 + h];
  if (lid == 0u) { scores[au(0u) + h * au(1u) + t] = max(1.0 / (1.0 + exp(-zz)), 1e-3); }
}`,
  });
});
