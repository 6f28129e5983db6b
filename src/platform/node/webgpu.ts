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
import { existsSync, readdirSync } from "node:fs";
import { createWebGpuBackendOn, isSoftwareAdapter, requestWebGpuDevice, WebGpuUnavailableError, type WebGpuDeviceInfo, type WebGpuDeviceOptions } from "../../backends/webgpu/webgpuDevice.js";
import type { WebGpuBackend } from "../../backends/webgpu/webgpuBackend.js";
import { InvalidInputError } from "../../errors.js";
import { idleWithoutPolling } from "./idleWithoutPolling.js";

export { isSoftwareAdapter, parseKernelChoice, WEBGPU_FEATURES, WebGpuUnavailableError } from "../../backends/webgpu/webgpuDevice.js";

/** Options of the Node device: memoryBytes defaults to WGKV_GPU_MEMORY, else 4 x the storage binding limit. */
export type NodeWebGpuOptions = WebGpuDeviceOptions;

const KEEP_ALIVE: unknown[] = [];

/** Dawn toggles of every instance: f16 and subgroup matrices on NVIDIA, exact timestamps. */
export const BASE_TOGGLES = ["allow_unsafe_apis", "vulkan_enable_f16_on_nvidia", "-timestamp_quantization"];
/**
 * Added on hardware GPUs. WebGPU's validation of each command costs host time
 * per dispatch that decode cannot hide (H200, 1B decode: about a quarter of
 * the step); the engine's commands are validated on software adapters (CI
 * and the tests run there). The driver's robust buffer access replaces
 * Tint's index clamps: out-of-bounds reads stay harmless.
 */
export const HARDWARE_TOGGLES = ["skip_validation", "vulkan_use_buffer_robust_access_2"];

/** Dawn's instance options for a toggle list ("-name" disables), after `added`'s (WGKV_DAWN_TOGGLES's) additions and removals. */
export function dawnInstanceOptions(toggles: readonly string[], added = process.env.WGKV_DAWN_TOGGLES ?? ""): string[] {
  const extra = added.split(",").map((t) => t.trim()).filter((t) => t !== "");
  const all = [...toggles, ...extra];
  const named = (t: string) => t.replace(/^-/, "");
  // NOTE: the last mention of a toggle wins, so the environment can undo a default
  const last = new Map(all.map((t) => [named(t), t]));
  const enable = [...last.values()].filter((t) => !t.startsWith("-"));
  const disable = [...last.values()].filter((t) => t.startsWith("-")).map(named);
  return [`enable-dawn-features=${enable.join(",")}`, ...(disable.length > 0 ? [`disable-dawn-features=${disable.join(",")}`] : [])];
}

/**
 * The `webgpu` package's GPU object with Dawn's toggles, kept referenced
 * until `release`. Toggles are fixed when an instance is made, before its
 * adapter is known: a hardware adapter gets a second instance with HARDWARE_TOGGLES.
 */
async function nodeGpu(): Promise<{ gpu: GPU; release: () => void }> {
  let mod: typeof import("webgpu");
  try {
    mod = await import("webgpu");
  } catch (err) {
    throw new WebGpuUnavailableError(`the "webgpu" package is not installed (${String((err as Error).message).split("\n")[0]})`);
  }
  Object.assign(globalThis, mod.globals);
  const held: unknown[] = [];
  const make = (toggles: readonly string[]) => {
    const gpu = mod.create(dawnInstanceOptions(toggles));
    held.push(gpu);
    KEEP_ALIVE.push(gpu);
    return gpu;
  };
  let gpu = make(BASE_TOGGLES);
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" }).catch(() => null);
  if (adapter && !isSoftwareAdapter(adapter.info, (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? adapter.info.isFallbackAdapter ?? false)) {
    gpu = make([...BASE_TOGGLES, ...HARDWARE_TOGGLES]);
  }
  const release = () => {
    // NOTE: let Dawn finish tearing the device down before the instances may be collected
    setTimeout(() => {
      for (const g of held) if (KEEP_ALIVE.includes(g)) KEEP_ALIVE.splice(KEEP_ALIVE.indexOf(g), 1);
    }, 1000).unref?.();
  };
  return { gpu, release };
}

const NO_ADAPTER_HINT = "is a Vulkan driver installed? on machines without a GPU: bash shared/tools/setup-lavapipe.sh";

/**
 * Whether this machine may have a GPU a driver can open: on Linux a DRM render node, NVIDIA's device or
 * WSL's; elsewhere yes. Where not, "auto" does not start Dawn at all (it would only find a software
 * renderer, and print its own warnings while looking).
 */
export function mayHaveHardwareGpu(): boolean {
  if (process.platform !== "linux") return true;
  if (existsSync("/dev/nvidiactl") || existsSync("/dev/dxg")) return true;
  try {
    return readdirSync("/dev/dri").some((name) => name.startsWith("renderD"));
  } catch {
    return false;
  }
}

export async function createNodeWebGpuBackend(options: NodeWebGpuOptions = {}): Promise<WebGpuBackend> {
  const env = process.env.WGKV_GPU_MEMORY;
  // NOTE: a bad setting is the user's error (not "no GPU", which auto would pass over), told before Dawn starts
  const memoryBytes = options.memoryBytes ?? (env ? parseBytes(env) : undefined);
  const { gpu, release } = await nodeGpu();
  // NOTE: WGKV_PROFILE=1 times every kernel (bench prints the table); off by default, as it splits passes
  const profile = options.profile ?? (process.env.WGKV_PROFILE !== undefined && process.env.WGKV_PROFILE !== "" && process.env.WGKV_PROFILE !== "0");
  return createWebGpuBackendOn(gpu, { ...options, memoryBytes, profile }, {
    release,
    noAdapterHint: NO_ADAPTER_HINT,
    // NOTE: benchmarks choose kernel variants by WGKV_KERNELS (JSON of kernelChoice.ts KernelChoice fields)
    kernelChoice: process.env.WGKV_KERNELS,
    idleFor: idleWithoutPolling,
  });
}

/** A bare device (the gate trainer's): `release` lets the instance go once the device is destroyed. */
export async function createNodeWebGpuDevice(options: Pick<NodeWebGpuOptions, "disableFeatures" | "requireHardware"> = {}): Promise<WebGpuDeviceInfo & { release: () => void }> {
  const { gpu, release } = await nodeGpu();
  return { ...(await requestWebGpuDevice(gpu, options, { release, noAdapterHint: NO_ADAPTER_HINT })), release };
}

/** "135GiB", "8e9", "512MiB" as bytes (WGKV_GPU_MEMORY). */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i.exec(text.trim());
  if (!m) throw new InvalidInputError(`WGKV_GPU_MEMORY must be bytes (e.g. 135GiB), got "${text}"`);
  const scale: Record<string, number> = { "": 1, b: 1, kb: 1e3, kib: 2 ** 10, mb: 1e6, mib: 2 ** 20, gb: 1e9, gib: 2 ** 30, tb: 1e12, tib: 2 ** 40 };
  return Math.floor(Number(m[1]) * scale[(m[2] ?? "").toLowerCase()]);
}
