/**
 * @module platform/node/webgpu
 *
 * A WebGPU device in Node.js through the `webgpu` package (Dawn). On NVIDIA,
 * Dawn hides shader-f16 and subgroup matrices unless the instance is made
 * with the toggles below (shared/tools/device/README.md). The object
 * `create()` returns must stay referenced while the device lives (Dawn
 * crashes when it is collected), so the backend's dispose hook holds it.
 * Features and limits are chosen as in browsers (backends/webgpu/webgpuDevice.ts);
 * here the environment adds WGKV_GPU_MEMORY, WGKV_KERNELS and WGKV_PROFILE.
 */
import { createWebGpuBackendOn, requestWebGpuDevice, WebGpuUnavailableError, type WebGpuDeviceInfo, type WebGpuDeviceOptions } from "../../backends/webgpu/webgpuDevice.js";
import type { WebGpuBackend } from "../../backends/webgpu/webgpuBackend.js";

export { isSoftwareAdapter, parseKernelChoice, WEBGPU_FEATURES, WebGpuUnavailableError } from "../../backends/webgpu/webgpuDevice.js";

/** Options of the Node device: memoryBytes defaults to WGKV_GPU_MEMORY, else 4 x the storage binding limit. */
export type NodeWebGpuOptions = WebGpuDeviceOptions;

const KEEP_ALIVE: unknown[] = [];

/** The `webgpu` package's GPU object with Dawn's toggles, kept referenced until `release`. */
async function nodeGpu(): Promise<{ gpu: GPU; release: () => void }> {
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
  return { gpu, release };
}

const NO_ADAPTER_HINT = "is a Vulkan driver installed? on machines without a GPU: bash shared/tools/setup-lavapipe.sh";

export async function createNodeWebGpuBackend(options: NodeWebGpuOptions = {}): Promise<WebGpuBackend> {
  const { gpu, release } = await nodeGpu();
  const env = process.env.WGKV_GPU_MEMORY;
  let memoryBytes = options.memoryBytes;
  try {
    memoryBytes ??= env ? parseBytes(env) : undefined;
  } catch (err) {
    release();
    throw err;
  }
  // NOTE: WGKV_PROFILE=1 times every kernel (bench prints the table); off by default, as it splits passes
  const profile = options.profile ?? (process.env.WGKV_PROFILE !== undefined && process.env.WGKV_PROFILE !== "" && process.env.WGKV_PROFILE !== "0");
  return createWebGpuBackendOn(gpu, { ...options, memoryBytes, profile }, {
    release,
    noAdapterHint: NO_ADAPTER_HINT,
    // NOTE: benchmarks choose kernel variants by WGKV_KERNELS (JSON of kernelChoice.ts KernelChoice fields)
    kernelChoice: process.env.WGKV_KERNELS,
  });
}

/** A bare device (the gate trainer's): `release` lets the instance go once the device is destroyed. */
export async function createNodeWebGpuDevice(options: Pick<NodeWebGpuOptions, "disableFeatures" | "requireHardware"> = {}): Promise<WebGpuDeviceInfo & { release: () => void }> {
  const { gpu, release } = await nodeGpu();
  return { ...(await requestWebGpuDevice(gpu, options, { release, noAdapterHint: NO_ADAPTER_HINT })), release };
}

/** "135GiB", "8e9", "512MiB" as bytes. */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i.exec(text.trim());
  if (!m) throw new WebGpuUnavailableError(`WGKV_GPU_MEMORY must be bytes (e.g. 135GiB), got "${text}"`);
  const scale: Record<string, number> = { "": 1, b: 1, kb: 1e3, kib: 2 ** 10, mb: 1e6, mib: 2 ** 20, gb: 1e9, gib: 2 ** 30, tb: 1e12, tib: 2 ** 40 };
  return Math.floor(Number(m[1]) * scale[(m[2] ?? "").toLowerCase()]);
}
