/**
 * @module train/webgpu/gpuTrainMemory
 *
 * Buffers and frozen matrices of the gate trainer on WebGPU: a buffer is one
 * GPUBuffer of f32 (zeroed at creation, as WebGPU guarantees); a matrix keeps
 * its bf16 words packed two per u32 (widened in the kernels' registers:
 * exact, half the memory), f32 as is, and f16 widened to f32 here (the
 * kernels read f32 or bf16, as the CPU trainer's). Host writes stay in order
 * with the recorded ops (backends/webgpu/orderedWrite.ts); reads are one
 * round trip and report the first kernel or device error.
 */
import type { WeightData } from "../../backends/backend.js";
import { ERROR_MESSAGES } from "../../backends/webgpu/kernelAbi.js";
import type { GpuRuntime } from "../../backends/webgpu/gpuRuntime.js";
import { bufferBytes } from "../../backends/webgpu/gpuTensor.js";
import { writeOrdered } from "../../backends/webgpu/orderedWrite.js";
import { decodeFloats } from "../../util/floats.js";
import type { TBuf, TMatrix } from "../trainOps.js";

export interface GpuBuf extends TBuf {
  readonly buffer: GPUBuffer;
}

export interface GpuMatrix extends TMatrix {
  readonly dtype: "f32" | "bf16";
  /** [rows, cols], bf16 packed two per word */
  readonly buffer: GPUBuffer;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class GpuTrainMemory {
  readonly #live = new Set<GPUBuffer>();

  constructor(readonly rt: GpuRuntime) {}

  #create(bytes: number, label: string): GPUBuffer {
    const device = this.rt.device;
    const size = bufferBytes(bytes);
    if (size > device.limits.maxStorageBufferBindingSize) throw new RangeError(`${label}: ${size} bytes exceed the device's storage binding limit (${device.limits.maxStorageBufferBindingSize})`);
    const b = device.createBuffer({ size, usage: USAGE(), label });
    this.#live.add(b);
    return b;
  }

  /** A zeroed f32 buffer of numel floats. */
  alloc(numel: number, label: string): GpuBuf {
    if (!Number.isSafeInteger(numel) || numel < 0) throw new RangeError(`alloc ${label}: bad size ${numel}`);
    return { buffer: this.#create(numel * 4, label), numel, label };
  }

  /** Destroyed once the ops recorded so far (which may read it) are submitted. */
  free(b: TBuf | TMatrix): void {
    const buffer = (b as GpuBuf | GpuMatrix).buffer;
    if (!this.#live.delete(buffer)) return;
    this.rt.destroyLater(buffer);
  }

  write(b: TBuf, data: Float32Array, offset = 0): void {
    if (!(Number.isInteger(offset) && offset >= 0 && offset + data.length <= b.numel)) throw new RangeError(`write to ${b.label}: ${data.length} floats at ${offset} overflow its ${b.numel}`);
    writeOrdered(this.rt, (b as GpuBuf).buffer, offset * 4, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Host ids [n] as an i32 buffer (freed by the caller after the op that reads it is recorded). */
  ids(ids: Int32Array): GPUBuffer {
    const b = this.#create(ids.byteLength, "ids");
    writeOrdered(this.rt, b, 0, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
    return b;
  }

  freeBuffer(buffer: GPUBuffer): void {
    if (this.#live.delete(buffer)) this.rt.destroyLater(buffer);
  }

  async read(b: TBuf, numel = b.numel): Promise<Float32Array> {
    if (!(Number.isInteger(numel) && numel >= 0 && numel <= b.numel)) throw new RangeError(`read of ${b.label}: ${numel} floats of ${b.numel}`);
    const { data, error } = await this.rt.readBack([{ buffer: (b as GpuBuf).buffer, bytes: numel * 4 }]);
    const deviceError = this.rt.deviceError;
    this.rt.deviceError = null;
    if (deviceError) throw new Error(`WebGPU: ${deviceError.split("\n")[0]}`);
    if (error[0] !== 0) throw new RangeError((ERROR_MESSAGES[error[0]!] ?? ((v: number) => `kernel error ${error[0]} (${v})`))(error[1]! | 0));
    return new Float32Array(data[0]!);
  }

  uploadMatrix(data: WeightData, label: string): GpuMatrix {
    if (data.shape.length !== 2) throw new RangeError(`${label}: a matrix needs 2 dimensions, got [${data.shape}]`);
    const [rows, cols] = data.shape as [number, number];
    const n = rows * cols;
    if (data.dtype === "BF16") {
      const buffer = this.#create(n * 2, label);
      const words = new Uint8Array(bufferBytes(n * 2));
      words.set(data.bytes.subarray(0, n * 2));
      writeOrdered(this.rt, buffer, 0, words);
      return { rows, cols, label, dtype: "bf16", buffer };
    }
    const values = decodeFloats(data.bytes, 0, n, data.dtype === "F32" ? "f32" : "f16");
    const buffer = this.#create(n * 4, label);
    writeOrdered(this.rt, buffer, 0, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return { rows, cols, label, dtype: "f32", buffer };
  }

  /** Every buffer still held (dispose). */
  destroyAll(): void {
    for (const b of this.#live) b.destroy();
    this.#live.clear();
  }
}
