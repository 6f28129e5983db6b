/**
 * @module backends/webgpu/gpuFeatures
 *
 * What a device offers beyond the portable path, learned once at creation
 * (platform-neutral: Node's `webgpu` package and browsers alike): the
 * adapter's subgroup sizes, and how its WGSL compiler spells subgroup-matrix
 * loads, if it compiles them at all.
 */
import type { SgMatrixDialect } from "./kernels/matmulSgKernels.js";
import { SG_MATRIX_NONUNIFORM_DIRECTIVES, SG_MATRIX_SYNTAX_PROBE, sgMatrixNonUniformProbe } from "./kernels/sgMatrixWgsl.js";

/**
 * How `device` compiles subgroup-matrix operations: the syntax of its loads
 * and the directive that lets subgroups of one workgroup differ (""
 * where none compiles); undefined without the feature or where neither syntax compiles.
 */
export async function probeSubgroupMatrix(device: GPUDevice): Promise<SgMatrixDialect | undefined> {
  if (!device.features.has("chromium-experimental-subgroup-matrix") || !device.features.has("shader-f16")) return undefined;
  const compiles = async (code: string) => (await shaderCompileError(device, code, "subgroup-matrix probe")) === null;
  const legacy = SG_MATRIX_SYNTAX_PROBE.replace("row_major>(&v, 0u, 8u)", ">(&v, 0u, false, 8u)").replace("subgroupMatrixStore<row_major>(&v, 64u, m, 8u)", "subgroupMatrixStore(&v, 64u, m, false, 8u)");
  const syntax = (await compiles(SG_MATRIX_SYNTAX_PROBE)) ? "new" : (await compiles(legacy)) ? "legacy" : undefined;
  if (!syntax) return undefined;
  for (const directive of SG_MATRIX_NONUNIFORM_DIRECTIVES) {
    if (await compiles(sgMatrixNonUniformProbe(syntax, directive))) return { syntax, nonUniform: directive };
  }
  return { syntax, nonUniform: "" };
}

/**
 * What `device`'s WGSL compiler says is wrong with `code` (its first error,
 * prefixed by `label`), or null: compiling alone, with no pipeline, so that
 * a module that fails never reaches createComputePipeline (where dawn.node
 * aborts the process).
 */
export async function shaderCompileError(device: GPUDevice, code: string, label: string): Promise<string | null> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label });
  const info = await module.getCompilationInfo();
  const error = await device.popErrorScope();
  const message = info.messages.find((m) => m.type === "error");
  return message ? `${label}: ${message.lineNum}:${message.linePos} ${message.message}` : error ? `${label}: ${error.message.split("\n")[0]}` : null;
}

/** Subgroup sizes from adapter.info, where the implementation reports them. */
export function subgroupSizesOf(info: GPUAdapterInfo): { min: number; max: number } | undefined {
  const i = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  return i.subgroupMinSize && i.subgroupMaxSize ? { min: i.subgroupMinSize, max: i.subgroupMaxSize } : undefined;
}
