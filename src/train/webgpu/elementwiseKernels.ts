/**
 * @module train/webgpu/elementwiseKernels
 *
 * The gate trainer's element-wise ops that the inference kernels lack
 * (add, siluMul and rope are theirs: backends/webgpu/kernels/transformerKernels.ts):
 * axpy, copy, fill and SwiGLU's backward. One thread per element, 256 per
 * workgroup. Every buffer f32 [n].
 */
import type { Kernel } from "../../backends/webgpu/gpuRuntime.js";
import { MAIN_ARGS, WG_INDEX } from "../../backends/webgpu/kernels/wgslCommon.js";
import { accesses, bindingsWgsl, trainKernel } from "./trainKernel.js";

function elementwise(label: string, list: readonly (readonly [string, "rw" | "ro"])[], body: string): Kernel {
  return trainKernel(label, accesses(list), /* wgsl */ `
${bindingsWgsl(list)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  if (i >= au(0u)) { return; }
  ${body}
}`);
}

/** y += alpha * x. args: n, alpha (f32) */
export const axpyKernel = () => elementwise("axpy", [["y", "rw"], ["x", "ro"]], "y[i] = y[i] + af(1u) * x[i];");

/** dst = src. args: n */
export const copyKernel = () => elementwise("copy", [["dst", "rw"], ["src", "ro"]], "dst[i] = src[i];");

/** x = value. args: n, value (f32) */
export const fillKernel = () => elementwise("fill", [["x", "rw"]], "x[i] = af(1u);");

/**
 * out = silu(g) u: dUp = dy silu(g), dGate = dy u s (1 + g (1 - s)) with s = sigmoid(g).
 * Bindings dGate, dUp, dy, gate, up. args: n
 */
export const siluMulBackwardKernel = () =>
  elementwise("siluMulBackward", [["dGate", "rw"], ["dUp", "rw"], ["dy", "ro"], ["gate", "ro"], ["up", "ro"]], `
  let g = gate[i]; let s = 1.0 / (1.0 + exp(-g)); let dyi = dy[i];
  dUp[i] = dyi * g * s;
  dGate[i] = dyi * up[i] * s * (1.0 + g * (1.0 - s));`);
