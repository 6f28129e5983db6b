/**
 * @module backends/webgpu/gpuFeatures
 *
 * What a device offers beyond the portable path, learned once at creation
 * (platform-neutral: Node's `webgpu` package and browsers alike): the
 * adapter's subgroup sizes, and how its WGSL compiler spells subgroup-matrix
 * loads, if it compiles them at all.
 */
import { SG_MATRIX_SYNTAX_PROBE, type SgMatrixSyntax } from "./kernels/matmulSgKernels.js";

/** The subgroup-matrix syntax that compiles on `device`, or undefined (no feature, or neither compiles). */
export async function probeSubgroupMatrixSyntax(device: GPUDevice): Promise<SgMatrixSyntax | undefined> {
  if (!device.features.has("chromium-experimental-subgroup-matrix") || !device.features.has("shader-f16")) return undefined;
  const compiles = async (code: string) => {
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label: "subgroup-matrix syntax probe" });
    const info = await module.getCompilationInfo();
    const error = await device.popErrorScope();
    return !error && !info.messages.some((m) => m.type === "error");
  };
  if (await compiles(SG_MATRIX_SYNTAX_PROBE)) return "new";
  const legacy = SG_MATRIX_SYNTAX_PROBE.replace("row_major>(&v, 0u, 8u)", ">(&v, 0u, false, 8u)").replace("subgroupMatrixStore<row_major>(&v, 64u, m, 8u)", "subgroupMatrixStore(&v, 64u, m, false, 8u)");
  return (await compiles(legacy)) ? "legacy" : undefined;
}

/** Subgroup sizes from adapter.info, where the implementation reports them. */
export function subgroupSizesOf(info: GPUAdapterInfo): { min: number; max: number } | undefined {
  const i = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  return i.subgroupMinSize && i.subgroupMaxSize ? { min: i.subgroupMinSize, max: i.subgroupMaxSize } : undefined;
}
