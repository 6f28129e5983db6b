/**
 * @module train/webgpu/trainKernel
 *
 * The gate trainer's kernels as backends/webgpu/gpuRuntime.ts compiles them:
 * one Kernel object per distinct WGSL source (pipelines are cached by source,
 * and sources that bake a shape in, like the head dim, are few), and the
 * bindings helper every kernel file uses.
 */
import type { Access, Kernel } from "../../backends/webgpu/gpuRuntime.js";
import { kernelOf } from "../../backends/webgpu/kernels/wgslCommon.js";

/** The kernel of this source (one object per source: backends/webgpu's kernelOf). */
export function trainKernel(label: string, bindings: readonly Access[], code: string): Kernel {
  return kernelOf(label, bindings, code);
}

/**
 * WGSL declarations of storage bindings in order: `name` f32 arrays, read_write
 * where marked `rw`. NOTE: WebGPU refuses a buffer bound writable twice, or
 * writable and read-only, in one dispatch: ops whose output may be an input
 * (mse's dy = y, rmsNorm, siluMul) have in-place variants binding it once.
 */
export function bindingsWgsl(list: readonly (readonly [string, Access, string?])[]): string {
  return list
    .map(([name, access, type], i) => `@group(0) @binding(${i}) var<storage, ${access === "rw" ? "read_write" : "read"}> ${name}: ${type ?? "array<f32>"};`)
    .join("\n");
}

/** The accesses of a binding list, for the Kernel. */
export function accesses(list: readonly (readonly [string, Access, string?])[]): Access[] {
  return list.map(([, a]) => a);
}
