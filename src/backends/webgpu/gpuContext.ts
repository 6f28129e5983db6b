/**
 * @module backends/webgpu/gpuContext
 *
 * What the parts of the WebGPU backend share: the options the platform made
 * it with, and the context its op files (transformerOps.ts, cacheOps.ts,
 * policyOps.ts) work in: the device, its command runtime (gpuRuntime.ts),
 * its memory (gpuMemory.ts), the kernel choice (kernelChoice.ts) and the
 * liveness check every op makes first (webgpuBackend.ts).
 */
import type { GpuMemory } from "./gpuMemory.js";
import type { GpuRuntime } from "./gpuRuntime.js";
import type { KernelChoice } from "./kernelChoice.js";
import type { SgMatrixDialect } from "./kernels/matmulSgKernels.js";
import type { IdleFor } from "./readPacer.js";

export interface WebGpuBackendOptions {
  /** Bytes the backend may allocate (the platform's estimate of GPU memory). */
  readonly memoryBytes: number;
  /** What the adapter is, for reports. */
  readonly adapterDescription: string;
  /** Attention items wanted per call at least (split-K below it); default 512. */
  readonly targetWorkgroups?: number;
  /** Optional features the device was made with (shader-f16, subgroups, ...). */
  readonly features?: ReadonlySet<string>;
  /** Sample every vocabulary with the parallel kernel (tests of that kernel on small rows). */
  readonly largeVocabSampling?: boolean;
  /** Releases what the platform holds for the device (called by dispose). */
  readonly onDispose?: () => void;
  /** Bytes of one storage binding the backend uses at most (default: the device's limit); tests split pools and weights with less. */
  readonly maxBindingBytes?: number;
  /** Subgroup sizes of the adapter (adapter.info), where it says. */
  readonly subgroupSizes?: { readonly min: number; readonly max: number };
  /** How the device compiles subgroup-matrix operations (probed by the platform), when it has the feature. */
  readonly subgroupMatrix?: SgMatrixDialect;
  /** A software adapter (lavapipe, SwiftShader): portable kernel shapes. */
  readonly software?: boolean;
  /** Time every dispatch with timestamp queries (gpuProfiler.ts), where the device has them. */
  readonly profile?: boolean;
  /** The platform's way to idle without polling the GPU (Node's: readPacer.ts says why); reads idle before mapping. */
  readonly idleFor?: IdleFor;
}

/** The state the backend's op files share (one object, made by the backend). */
export interface GpuContext {
  readonly device: GPUDevice;
  readonly rt: GpuRuntime;
  readonly mem: GpuMemory;
  /** The kernel variants in use (the backend's own `kernels`: benchmarks and tests change its fields). */
  readonly kernels: KernelChoice;
  readonly options: WebGpuBackendOptions;
  /** Throws after dispose; records what waits for fusion first (slot copies always; the transformer's op unless the caller may fuse with it: settle false). */
  checkLive(settle?: boolean): void;
}

/** A dispatch's argument indices that hold f32 (GpuRuntime.dispatch's `floats`). */
export const F = (...indices: number[]): ReadonlySet<number> => new Set(indices);
