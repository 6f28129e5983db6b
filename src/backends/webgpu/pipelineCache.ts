/**
 * @module backends/webgpu/pipelineCache
 *
 * One compute pipeline per kernel source, compiled when first dispatched:
 * its bind group layout is the kernel's bindings (read-only or read-write
 * storage) and then the arguments' window (read-only storage with a
 * dynamic offset: kernelAbi.ts argsWgsl).
 */
import { moduleSource } from "./kernelAbi.js";
import { shaderCompileError } from "./gpuFeatures.js";
import type { Kernel } from "./gpuRuntime.js";

export interface CompiledKernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

export class PipelineCache {
  readonly #pipelines = new Map<string, CompiledKernel>();

  constructor(readonly device: GPUDevice) {}

  get(k: Kernel): CompiledKernel {
    let p = this.#pipelines.get(k.code);
    if (!p) {
      const layout = this.device.createBindGroupLayout({
        label: k.label,
        entries: [
          ...k.bindings.map((access, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: access === "ro" ? ("read-only-storage" as const) : ("storage" as const) } })),
          { binding: k.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: "read-only-storage", hasDynamicOffset: true } },
        ],
      });
      const module = this.device.createShaderModule({ code: moduleSource(k), label: k.label });
      const pipeline = this.device.createComputePipeline({
        label: k.label,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: "main" },
      });
      p = { pipeline, layout };
      this.#pipelines.set(k.code, p);
    }
    return p;
  }

  /**
   * What the WGSL compiler says is wrong with `k`, or null: a kernel that
   * fails to compile must not reach createComputePipeline, where dawn.node
   * aborts the process (variants of experimental features are checked first).
   */
  compileError(k: Kernel): Promise<string | null> {
    return shaderCompileError(this.device, moduleSource(k), k.label);
  }
}
