/**
 * @module platform/browser/webgpu
 *
 * The WebGPU backend on `navigator.gpu`, with the features and limits Node
 * chooses (backends/webgpu/webgpuDevice.ts). A browser without WebGPU, or
 * a page outside a secure context (https or localhost), has no
 * `navigator.gpu`: that is one line, not a TypeError.
 */
import { createWebGpuBackendOn, WebGpuUnavailableError, type WebGpuDeviceOptions } from "../../backends/webgpu/webgpuDevice.js";
import type { WebGpuBackend } from "../../backends/webgpu/webgpuBackend.js";

/** The browser's WebGPU entry point, or a one-line reason why there is none. */
export function navigatorGpu(): GPU {
  const nav = typeof navigator !== "undefined" ? (navigator as Navigator & { gpu?: GPU }) : undefined;
  if (nav?.gpu) return nav.gpu;
  const secure = typeof isSecureContext === "undefined" || isSecureContext;
  throw new WebGpuUnavailableError(
    secure ? "WebGPU is not available in this browser (navigator.gpu is missing)" : "WebGPU is not available: the page is not a secure context (serve it over https or from localhost)",
  );
}

export async function createBrowserWebGpuBackend(options: WebGpuDeviceOptions = {}): Promise<WebGpuBackend> {
  return createWebGpuBackendOn(navigatorGpu(), options, { noAdapterHint: "the browser offers WebGPU but no adapter: is WebGPU enabled for this GPU? (chrome://gpu)" });
}
