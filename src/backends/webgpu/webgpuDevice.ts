/**
 * @module backends/webgpu/webgpuDevice
 *
 * From a `GPU` (Node's `webgpu` package, or `navigator.gpu` in a browser) to a
 * WebGpuBackend: the adapter, the optional features the backend uses where
 * the adapter has them, the limits it raises to the adapter's, and the
 * kernel self-check. Platform-neutral, so Node and browsers choose features
 * and limits the same way; the platforms add only what they alone know (the
 * package's toggles, environment variables).
 */
import { InvalidInputError } from "../../errors.js";
import { WebGpuUnavailableError } from "./webgpuErrors.js";
import { probeSubgroupMatrix, subgroupSizesOf } from "./gpuFeatures.js";
import { WebGpuBackend } from "./webgpuBackend.js";
import type { IdleFor } from "./readPacer.js";

/** Features the backend uses where the adapter has them. */
export const WEBGPU_FEATURES = ["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix", "timestamp-query"] as const;

export interface WebGpuDeviceOptions {
  /** Features not to use even where the adapter has them (to test the paths without them). */
  readonly disableFeatures?: readonly string[];
  /** Bytes the backend may allocate; default 4 x the storage binding limit. */
  readonly memoryBytes?: number;
  /** Sample every vocabulary with the parallel kernel (its tests). */
  readonly largeVocabSampling?: boolean;
  /** Refuse software adapters (lavapipe, SwiftShader): "auto" wants a real GPU. */
  readonly requireHardware?: boolean;
  /** Bytes of one storage binding the backend uses at most (tests: split pools and weights on small data). */
  readonly maxBindingBytes?: number;
  /** Time every dispatch (backend.takeProfile()); for finding where GPU time goes. */
  readonly profile?: boolean;
}

export interface WebGpuDeviceHooks {
  /** Called once the device is gone, or when creation fails (Node keeps its instance alive until then). */
  readonly release?: () => void;
  /** Appended to the "no adapter" message: what this platform's user can do about it. */
  readonly noAdapterHint?: string;
  /** Kernel choices to apply (JSON text, kernelChoice.ts KernelChoice fields); Node reads WGKV_KERNELS. */
  readonly kernelChoice?: string;
  /** Where the kernel choices came from, for their error messages. */
  readonly kernelChoiceName?: string;
  /** Idles without polling the GPU, where the platform's mapAsync polls (Node's `webgpu` package; readPacer.ts). */
  readonly idleFor?: IdleFor;
}

export { WebGpuUnavailableError };

/** True for software rasterisers that run WebGPU on the CPU. */
export function isSoftwareAdapter(info: GPUAdapterInfo, isFallback: boolean): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return isFallback || /llvmpipe|lavapipe|swiftshader|software/.test(text);
}

const firstLine = (err: unknown) => String((err as Error | null)?.message ?? err).split("\n")[0];

/** A device on `gpu`'s high-performance adapter, with what the backends need to know of it. */
export interface WebGpuDeviceInfo {
  readonly device: GPUDevice;
  readonly info: GPUAdapterInfo;
  readonly limits: GPUSupportedLimits;
  readonly software: boolean;
  readonly features: readonly GPUFeatureName[];
  /** The adapter in words, "(software)" marked, and the features enabled. */
  readonly description: string;
}

/** Requests the device (the adapter's limits, the wanted features it has); failures are one-line WebGpuUnavailableErrors, after hooks.release. */
export async function requestWebGpuDevice(gpu: GPU, options: WebGpuDeviceOptions = {}, hooks: WebGpuDeviceHooks = {}): Promise<WebGpuDeviceInfo> {
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" }).catch((err: unknown) => {
      throw new WebGpuUnavailableError(`no WebGPU adapter: ${firstLine(err)}`);
    });
    if (!adapter) throw new WebGpuUnavailableError(`no WebGPU adapter found${hooks.noAdapterHint ? ` (${hooks.noAdapterHint})` : ""}`);
    const info = adapter.info;
    const software = isSoftwareAdapter(info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? info.isFallbackAdapter ?? false);
    if (options.requireHardware && software) throw new WebGpuUnavailableError(`the WebGPU adapter is a software renderer (${info.description || info.architecture || info.vendor})`);
    const disabled = new Set(options.disableFeatures ?? []);
    const features = WEBGPU_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f)) as GPUFeatureName[];
    const l = adapter.limits;
    // NOTE: the defaults (128 MiB bindings, 16 KiB workgroup memory) are below what the kernels and large weights need
    const device = await adapter
      .requestDevice({
        requiredFeatures: features,
        requiredLimits: {
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
          maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
          maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
          maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        },
      })
      .catch((err: unknown) => {
        throw new WebGpuUnavailableError(`the WebGPU adapter refused a device: ${firstLine(err)}`);
      });
    const name = [info.vendor, info.architecture, info.description].filter((s) => s).join(" ") || "adapter";
    return { device, info, limits: l, software, features, description: `${name}${software ? " (software)" : ""}; ${features.join(", ") || "no optional features"}` };
  } catch (err) {
    hooks.release?.();
    throw err;
  }
}

/** Makes a WebGpuBackend on `gpu`'s high-performance adapter; failures are one-line WebGpuUnavailableErrors. */
export async function createWebGpuBackendOn(gpu: GPU, options: WebGpuDeviceOptions = {}, hooks: WebGpuDeviceHooks = {}): Promise<WebGpuBackend> {
  const { device, info, limits, software, features, description } = await requestWebGpuDevice(gpu, options, hooks);
  const subgroupMatrix = await probeSubgroupMatrix(device);
  const backend = new WebGpuBackend(device, {
    memoryBytes: options.memoryBytes ?? 4 * limits.maxStorageBufferBindingSize,
    adapterDescription: description,
    features: new Set(features),
    // NOTE: a software adapter runs workgroups one after another: splitting only adds work
    targetWorkgroups: software ? 16 : 512,
    largeVocabSampling: options.largeVocabSampling,
    onDispose: hooks.release,
    maxBindingBytes: options.maxBindingBytes,
    subgroupSizes: subgroupSizesOf(info),
    subgroupMatrix,
    profile: options.profile,
    software,
    idleFor: hooks.idleFor,
  });
  try {
    if (hooks.kernelChoice) Object.assign(backend.kernels, parseKernelChoice(hooks.kernelChoice, backend.kernels, hooks.kernelChoiceName));
  } catch (err) {
    backend.dispose();
    throw err;
  }
  await backend.checkKernels();
  return backend;
}

/** Kernel choices that are a tile variant or null (off), whatever the default. */
const TILE_CHOICES = new Set(["sgMatrix", "sgMatrixSmall", "f16Matmul", "f16MatmulSmall"]);

/** Kernel choices: a JSON object of some KernelChoice fields, each of the type the default has. */
export function parseKernelChoice(text: string, defaults: object, name = "WGKV_KERNELS"): object {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidInputError(`${name} must be a JSON object of kernel choices, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidInputError(`${name} must be a JSON object of kernel choices`);
  for (const [key, v] of Object.entries(value)) {
    if (!(key in defaults)) throw new InvalidInputError(`${name}: unknown kernel choice "${key}" (known: ${Object.keys(defaults).join(", ")})`);
    const d = (defaults as Record<string, unknown>)[key];
    const sameType = typeof v === typeof d || (TILE_CHOICES.has(key) && (v === null || typeof v === "object"));
    if (!sameType || (typeof v === "object" && v !== null && Array.isArray(v))) throw new InvalidInputError(`${name}: "${key}" must be ${d === null ? "an object or null" : typeof d === "object" ? "an object" : `a ${typeof d}`}`);
  }
  return value;
}
