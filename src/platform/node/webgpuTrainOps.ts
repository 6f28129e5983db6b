/**
 * @module platform/node/webgpuTrainOps
 *
 * The gate trainer's WebGPU device in Node.js: a device from the `webgpu`
 * package (webgpu.ts, the adapter's limits) running train/webgpu/'s ops.
 * The trainer's kernels use no optional feature, so none is asked for.
 */
import { WebGpuTrainOps } from "../../train/webgpu/webgpuTrainOps.js";
import { createNodeWebGpuDevice, WEBGPU_FEATURES } from "./webgpu.js";

export interface NodeTrainDeviceOptions {
  /** Refuse software adapters (lavapipe, SwiftShader): --backend auto wants a real GPU. */
  readonly requireHardware?: boolean;
}

/** Rejects with WebGpuUnavailableError (one line) when no adapter is found. */
export async function createNodeWebGpuTrainOps(options: NodeTrainDeviceOptions = {}): Promise<WebGpuTrainOps> {
  const d = await createNodeWebGpuDevice({ requireHardware: options.requireHardware, disableFeatures: [...WEBGPU_FEATURES] });
  return new WebGpuTrainOps(d.device, d.description, d.release);
}
