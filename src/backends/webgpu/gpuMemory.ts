/**
 * @module backends/webgpu/gpuMemory
 *
 * The WebGPU backend's memory (docs/design.md §5): the buffers it holds (one
 * GPUBuffer per tensor, counted against the platform's estimate of GPU
 * memory, destroyed after the recorded commands are submitted), the largest
 * storage binding, the scratch buffer ops plan into, host bytes written in
 * order with the recorded ops, and weights uploaded (in parts of whole rows
 * where a matrix exceeds one binding).
 */
import { f16BitsToF32 } from "../../util/halfFloat.js";
import { DTYPE_BYTES, numElements, type DType, type HostArray, type Tensor, type WeightData } from "../backend.js";
import type { WebGpuBackendOptions } from "./gpuContext.js";
import type { GpuRuntime } from "./gpuRuntime.js";
import { bufferBytes, gpu, GpuTensor, type RowPart } from "./gpuTensor.js";
import { writeOrdered } from "./orderedWrite.js";

export class GpuMemory {
  readonly #device: GPUDevice;
  readonly #rt: GpuRuntime;
  readonly #options: WebGpuBackendOptions;
  #usedBytes = 0;
  readonly #live = new Set<GPUBuffer>();
  #scratch: GPUBuffer;
  /** A small buffer bound where a kernel's optional input (a bias, scores) is absent. */
  readonly dummy: GPUBuffer;

  constructor(device: GPUDevice, rt: GpuRuntime, options: WebGpuBackendOptions) {
    this.#device = device;
    this.#rt = rt;
    this.#options = options;
    this.dummy = this.buffer(16, "dummy");
    this.#scratch = this.buffer(1 << 16, "scratch");
  }

  availableBytes(): number {
    return Math.max(0, this.#options.memoryBytes - this.#usedBytes);
  }

  buffer(bytes: number, label: string): GPUBuffer {
    const size = Math.ceil(Math.max(16, bytes) / 16) * 16;
    if (size > this.#device.limits.maxBufferSize) throw new RangeError(`${label}: ${size} bytes exceed the device's largest buffer (${this.#device.limits.maxBufferSize})`);
    const b = this.#device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
    this.#usedBytes += size;
    this.#live.add(b);
    return b;
  }

  free(b: GPUBuffer): void {
    if (!this.#live.delete(b)) return;
    this.#usedBytes -= b.size;
    this.#rt.destroyLater(b);
  }

  /** Destroys every buffer now (dispose). */
  destroyAll(): void {
    for (const b of this.#live) b.destroy();
    this.#live.clear();
  }

  /** A binding of a tensor that must fit one storage binding. */
  bind(t: GpuTensor): GPUBuffer {
    if (t.buffer.size > this.#device.limits.maxStorageBufferBindingSize) throw new RangeError(`${t.label}: ${t.buffer.size} bytes exceed the device's storage binding limit`);
    return t.buffer;
  }

  /** Bytes one storage binding may hold. */
  get bindingLimit(): number {
    const l = this.#device.limits;
    return Math.min(this.#options.maxBindingBytes ?? Infinity, l.maxStorageBufferBindingSize, l.maxBufferSize);
  }

  /** The scratch buffer with room for `bytes` (its contents are not kept across growth). */
  scratchFor(bytes: number): GPUBuffer {
    if (bytes > this.#scratch.size) {
      this.free(this.#scratch);
      this.#scratch = this.buffer(Math.max(bytes, 2 * this.#scratch.size), "scratch");
    }
    return this.#scratch;
  }

  createTensor(shape: readonly number[], dtype: DType, label: string): GpuTensor {
    const numel = numElements(shape);
    if (!Number.isSafeInteger(numel) || numel < 0 || shape.some((n) => !Number.isInteger(n) || n < 0)) throw new RangeError(`createTensor ${label}: bad shape [${shape}]`);
    return new GpuTensor(this.buffer(bufferBytes(numel * DTYPE_BYTES[dtype]), label), shape, dtype, label);
  }

  destroyTensor(t: Tensor): void {
    const g = gpu(t);
    g.kill();
    for (const part of g.parts ?? [{ buffer: g.buffer }]) this.free(part.buffer);
  }

  uploadWeight(data: WeightData, kind: "matrix" | "vector"): Tensor {
    const numel = numElements(data.shape);
    const label = `weight [${data.shape}]`;
    const keepBf16 = data.dtype === "BF16" && kind === "matrix";
    const elementBytes = keepBf16 ? 2 : 4;
    const [rows, width] = data.shape.length === 2 ? (data.shape as [number, number]) : [1, numel];
    if (numel * elementBytes > this.bindingLimit && kind === "matrix" && rows > 1) return this.#uploadInParts(data, keepBf16, rows, width, label);
    const t = this.createTensor(data.shape, keepBf16 ? "bf16" : "f32", label);
    this.writeRaw(t.buffer, 0, keepBf16 ? data.bytes.subarray(0, numel * 2) : widenToF32(data, 0, numel));
    return t;
  }

  /**
   * A matrix larger than one storage binding, in parts of whole rows (each
   * starting on a word): matmul and embed dispatch once per part.
   */
  #uploadInParts(data: WeightData, keepBf16: boolean, rows: number, width: number, label: string): Tensor {
    const elementBytes = keepBf16 ? 2 : 4;
    let rowsPerPart = Math.floor(this.bindingLimit / (width * elementBytes));
    if (keepBf16 && width % 2 === 1) rowsPerPart -= rowsPerPart % 2;
    if (rowsPerPart < 1) throw new RangeError(`${label}: one row is larger than the device's storage binding limit`);
    const parts: RowPart[] = [];
    for (let first = 0; first < rows; first += rowsPerPart) {
      const n = Math.min(rowsPerPart, rows - first);
      const buffer = this.buffer(bufferBytes(n * width * elementBytes), `${label} rows ${first}..${first + n}`);
      const bytes = keepBf16 ? data.bytes.subarray(first * width * 2, (first + n) * width * 2) : widenToF32(data, first * width, n * width);
      this.writeRaw(buffer, 0, bytes);
      parts.push({ buffer, firstRow: first, numRows: n });
    }
    // NOTE: the tensor's own buffer is the first part's; destroyTensor frees every part
    const t = new GpuTensor(parts[0].buffer, data.shape, keepBf16 ? "bf16" : "f32", label);
    t.parts = parts;
    return t;
  }

  /** Host bytes into a buffer at a byte offset, in order with the ops recorded so far (orderedWrite.ts). */
  writeRaw(buffer: GPUBuffer, byteOffset: number, bytes: Uint8Array): void {
    writeOrdered(this.#rt, buffer, byteOffset, bytes);
  }
}

/** Elements [first, first + n) of a weight as f32 bytes (bf16 and f16 widened exactly). */
function widenToF32(data: WeightData, first: number, n: number): Uint8Array {
  const out = new Float32Array(n);
  const view = new DataView(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength);
  if (data.dtype === "F32") for (let i = 0; i < n; i++) out[i] = view.getFloat32((first + i) * 4, true);
  else if (data.dtype === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16((first + i) * 2, true) << 16;
  } else for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16((first + i) * 2, true));
  return new Uint8Array(out.buffer);
}

/** The first n elements of read-back bytes as the dtype's host array. */
export function hostView(bytes: ArrayBuffer, dtype: DType, n: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(bytes, 0, n);
    case "i32":
      return new Int32Array(bytes, 0, n);
    case "u32":
      return new Uint32Array(bytes, 0, n);
    case "u8":
      return new Uint8Array(bytes, 0, n);
    case "f16":
    case "bf16":
      return new Uint16Array(bytes, 0, n);
  }
}
