/**
 * @module backends/webgpu/webgpuErrors
 *
 * The error of a WebGPU device that cannot be had, in a file of its own so
 * the browser entry's published types name it without the WebGPU types the
 * device code needs (a consumer without @webgpu/types compiles them).
 */
import { WgkvError } from "../../errors.js";

/** The device could not be made; the message is one line (a user's matter: no GPU, no driver, no browser support). */
export class WebGpuUnavailableError extends WgkvError {
  override readonly name = "WebGpuUnavailableError";
}
