/**
 * @module platform/node/webgpu
 *
 * A WebGPU device in Node.js through the `webgpu` package (Dawn). On NVIDIA,
 * Dawn hides shader-f16 and subgroup matrices unless the instance is made
 * with the toggles below (shared/tools/device/README.md). The object
 * `create()` returns must stay referenced while the device lives (Dawn
 * crashes when it is collected), so the backend's dispose hook holds it.
 */
import { probeSubgroupMatrixSyntax, subgroupSizesOf } from "../../backends/webgpu/gpuFeatures.js";
import { WebGpuBackend } from "../../backends/webgpu/webgpuBackend.js";
import { InvalidInputError } from "../../errors.js";

/** Features the backend uses where the adapter has them. */
export const WEBGPU_FEATURES = ["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix", "timestamp-query"] as const;

export interface NodeWebGpuOptions {
  /** Features not to use even where the adapter has them (to test the paths without them). */
  readonly disableFeatures?: readonly string[];
  /** Bytes the backend may allocate; default WGKV_GPU_MEMORY, else 4 x the storage binding limit. */
  readonly memoryBytes?: number;
  /** Sample every vocabulary with the parallel kernel (its tests). */
  readonly largeVocabSampling?: boolean;
  /** Refuse software adapters (lavapipe, SwiftShader): "auto" wants a real GPU. */
  readonly requireHardware?: boolean;
  /** Bytes of one storage binding the backend uses at most (tests: split pools and weights on small data). */
  readonly maxBindingBytes?: number;
}

/** The device could not be made; the message is one line. */
export class WebGpuUnavailableError extends Error {
  override readonly name = "WebGpuUnavailableError";
}

const KEEP_ALIVE: unknown[] = [];

/** True for software rasterisers that run WebGPU on the CPU. */
export function isSoftwareAdapter(info: GPUAdapterInfo, isFallback: boolean): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return isFallback || /llvmpipe|lavapipe|swiftshader|software/.test(text);
}

/** A device made through the `webgpu` package, with what the backends need to know of it. */
export interface NodeWebGpuDevice {
  readonly device: GPUDevice;
  /** The adapter in words, "(software)" marked, and the features enabled. */
  readonly description: string;
  readonly software: boolean;
  readonly features: readonly GPUFeatureName[];
  readonly maxStorageBufferBindingSize: number;
  /** Subgroup sizes of the adapter, where it says. */
  readonly subgroupSizes: { readonly min: number; readonly max: number } | undefined;
  /** Lets the instance be collected once the device is gone (call after device.destroy()). */
  readonly release: () => void;
}

/** A GPUDevice of the best adapter, with the adapter's limits (the backends' needs) and the optional features wanted. */
export async function createNodeWebGpuDevice(options: Pick<NodeWebGpuOptions, "disableFeatures" | "requireHardware"> = {}): Promise<NodeWebGpuDevice> {
  let mod: typeof import("webgpu");
  try {
    mod = await import("webgpu");
  } catch (err) {
    throw new WebGpuUnavailableError(`the "webgpu" package is not installed (${String((err as Error).message).split("\n")[0]})`);
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create(["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia", "disable-dawn-features=timestamp_quantization"]);
  KEEP_ALIVE.push(gpu);
  const release = () => {
    const i = KEEP_ALIVE.indexOf(gpu);
    // NOTE: let Dawn finish tearing the device down before the instance may be collected
    if (i >= 0) setTimeout(() => KEEP_ALIVE.splice(KEEP_ALIVE.indexOf(gpu), 1), 1000).unref?.();
  };
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (err) {
    release();
    throw new WebGpuUnavailableError(`no WebGPU adapter: ${String((err as Error).message).split("\n")[0]}`);
  }
  if (!adapter) {
    release();
    throw new WebGpuUnavailableError("no WebGPU adapter found (is a Vulkan driver installed? on machines without a GPU: bash shared/tools/setup-lavapipe.sh)");
  }
  const info = adapter.info;
  const software = isSoftwareAdapter(info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? info.isFallbackAdapter ?? false);
  if (options.requireHardware && software) {
    release();
    throw new WebGpuUnavailableError(`the WebGPU adapter is a software renderer (${info.description || info.architecture || info.vendor})`);
  }
  const disabled = new Set(options.disableFeatures ?? []);
  const features = WEBGPU_FEATURES.filter((f) => adapter!.features.has(f) && !disabled.has(f)) as GPUFeatureName[];
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const name = [info.vendor, info.architecture, info.description].filter((s) => s).join(" ") || "adapter";
  return {
    device, software, features, release,
    description: `${name}${software ? " (software)" : ""}; ${features.join(", ") || "no optional features"}`,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    subgroupSizes: subgroupSizesOf(info),
  };
}

export async function createNodeWebGpuBackend(options: NodeWebGpuOptions = {}): Promise<WebGpuBackend> {
  const { device, description, software, features, release, maxStorageBufferBindingSize, subgroupSizes } = await createNodeWebGpuDevice(options);
  const env = typeof process !== "undefined" ? process.env.WGKV_GPU_MEMORY : undefined;
  const memoryBytes = options.memoryBytes ?? (env ? parseBytes(env) : 4 * maxStorageBufferBindingSize);
  const subgroupMatrixSyntax = await probeSubgroupMatrixSyntax(device);
  const backend = new WebGpuBackend(device, {
    memoryBytes,
    adapterDescription: description,
    features: new Set(features),
    // NOTE: a software adapter runs workgroups one after another: splitting only adds work
    targetWorkgroups: software ? 16 : 512,
    largeVocabSampling: options.largeVocabSampling,
    onDispose: release,
    maxBindingBytes: options.maxBindingBytes,
    subgroupSizes,
    subgroupMatrixSyntax,
  });
  // NOTE: benchmarks choose kernel variants by WGKV_KERNELS (JSON of kernelChoice.ts KernelChoice fields)
  const chosen = typeof process !== "undefined" ? process.env.WGKV_KERNELS : undefined;
  try {
    if (chosen) Object.assign(backend.kernels, parseKernelChoice(chosen, backend.kernels));
  } catch (err) {
    backend.dispose();
    throw err;
  }
  await backend.checkKernels();
  return backend;
}

/** WGKV_KERNELS: a JSON object of some KernelChoice fields, each of the type the default has. */
export function parseKernelChoice(text: string, defaults: object): object {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidInputError(`WGKV_KERNELS must be a JSON object of kernel choices, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidInputError("WGKV_KERNELS must be a JSON object of kernel choices");
  for (const [key, v] of Object.entries(value)) {
    if (!(key in defaults)) throw new InvalidInputError(`WGKV_KERNELS: unknown kernel choice "${key}" (known: ${Object.keys(defaults).join(", ")})`);
    const d = (defaults as Record<string, unknown>)[key];
    const sameType = typeof v === typeof d || (key === "sgMatrix" && (v === null || typeof v === "object"));
    if (!sameType || (typeof v === "object" && v !== null && Array.isArray(v))) throw new InvalidInputError(`WGKV_KERNELS: "${key}" must be ${d === null ? "an object or null" : typeof d === "object" ? "an object" : `a ${typeof d}`}`);
  }
  return value;
}

/** "135GiB", "8e9", "512MiB" as bytes. */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i.exec(text.trim());
  if (!m) throw new WebGpuUnavailableError(`WGKV_GPU_MEMORY must be bytes (e.g. 135GiB), got "${text}"`);
  const scale: Record<string, number> = { "": 1, b: 1, kb: 1e3, kib: 2 ** 10, mb: 1e6, mib: 2 ** 20, gb: 1e9, gib: 2 ** 30, tb: 1e12, tib: 2 ** 40 };
  return Math.floor(Number(m[1]) * scale[(m[2] ?? "").toLowerCase()]);
}
