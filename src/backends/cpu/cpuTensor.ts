/**
 * @module backends/cpu/cpuTensor
 *
 * A CPU tensor: a block of the kernels' linear memory plus its shape and
 * dtype, and typed views of it. Views are made at the moment of use: the
 * memory may have grown (and its buffer object changed) since creation.
 */
import { DTYPE_BYTES, numElements, type DType, type HostArray, type Tensor } from "../backend.js";
import type { CpuKernels } from "./kernels.js";

export class CpuTensor implements Tensor {
  readonly numel: number;
  readonly byteLength: number;
  #live = true;

  constructor(
    readonly ptr: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
  ) {
    this.numel = numElements(shape);
    this.byteLength = this.numel * DTYPE_BYTES[dtype];
  }

  get isLive(): boolean {
    return this.#live;
  }

  /** Marks the tensor destroyed: later uses throw. */
  kill(): void {
    this.#live = false;
  }
}

/** The tensor as a CpuTensor that is still alive, or an error naming it. */
export function cpu(t: Tensor): CpuTensor {
  if (!(t instanceof CpuTensor)) throw new Error(`tensor ${t.label} does not belong to the CPU backend`);
  if (!t.isLive) throw new Error(`tensor ${t.label} was used after destroyTensor()`);
  return t;
}

/** Views of tensors in the kernels' memory (made when a command runs). */
export class TensorViews {
  constructor(readonly kernels: CpuKernels) {}

  f32(t: CpuTensor, numel = t.numel, offset = 0): Float32Array {
    return new Float32Array(this.kernels.buffer(), t.ptr + offset * 4, numel);
  }

  i32(t: CpuTensor, numel = t.numel, offset = 0): Int32Array {
    return new Int32Array(this.kernels.buffer(), t.ptr + offset * 4, numel);
  }

  u8(t: CpuTensor, numel = t.numel, offset = 0): Uint8Array {
    return new Uint8Array(this.kernels.buffer(), t.ptr + offset, numel);
  }

  /** The elements of any tensor as the host array its dtype reads back as. */
  host(t: CpuTensor, numel = t.numel, offset = 0): HostArray {
    const buffer = this.kernels.buffer();
    const at = t.ptr + offset * DTYPE_BYTES[t.dtype];
    switch (t.dtype) {
      case "f32":
        return new Float32Array(buffer, at, numel);
      case "i32":
        return new Int32Array(buffer, at, numel);
      case "u32":
        return new Uint32Array(buffer, at, numel);
      case "u8":
        return new Uint8Array(buffer, at, numel);
      case "f16":
      case "bf16":
        return new Uint16Array(buffer, at, numel);
    }
  }
}

/** True when a host array can be written into a tensor of `dtype` element for element. */
export function hostArrayFits(data: HostArray, dtype: DType): boolean {
  switch (dtype) {
    case "f32":
      return data instanceof Float32Array;
    case "i32":
      return data instanceof Int32Array;
    case "u32":
      return data instanceof Uint32Array;
    case "u8":
      return data instanceof Uint8Array;
    case "f16":
    case "bf16":
      return data instanceof Uint16Array;
  }
}
