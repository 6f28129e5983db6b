/**
 * @module backends/webgpu/orderedWrite
 *
 * Host bytes into a GPU buffer, in order with the ops recorded so far
 * (docs/design.md §5): queue.writeBuffer runs before any command not yet
 * submitted, so a large write flushes what is recorded first, and a small
 * one travels through the argument arena and the writeBytes kernel, recorded
 * in order (no flush in the middle of a step). The backend's writes
 * (gpuMemory.ts) and the gate trainer's (train/webgpu/) go through here.
 */
import type { GpuRuntime } from "./gpuRuntime.js";
import { writeBytesKernel } from "./kernels/transformerKernels.js";

/** Writes this small (bytes) go through the arena when ops are recorded. */
export const SMALL_WRITE = 1 << 16;

export function writeOrdered(rt: GpuRuntime, buffer: GPUBuffer, byteOffset: number, bytes: Uint8Array): void {
  const aligned = byteOffset % 4 === 0 && bytes.byteLength % 4 === 0;
  if (aligned && (rt.numCommands === 0 || bytes.byteLength > SMALL_WRITE)) {
    if (rt.numCommands > 0) rt.flush();
    // NOTE: writeBuffer copies the data at the call
    rt.device.queue.writeBuffer(buffer, byteOffset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return;
  }
  // whole words of source bytes per chunk of the argument window
  const chunk = Math.floor((rt.window - 64) / 4) * 4;
  for (let at = 0; at < bytes.byteLength; at += chunk) {
    const part = bytes.subarray(at, Math.min(bytes.byteLength, at + chunk));
    const words = new Uint32Array(Math.ceil(part.byteLength / 4));
    new Uint8Array(words.buffer).set(part);
    const first = byteOffset + at;
    const numWords = Math.floor((first + part.byteLength - 1) / 4) - Math.floor(first / 4) + 1;
    rt.dispatch(writeBytesKernel(), [buffer], Math.ceil(numWords / 256), [first, part.byteLength, 0, 0], null, [words]);
  }
}
