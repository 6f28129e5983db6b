/**
 * @module train/cpu/cpuMemory
 *
 * Buffers and frozen matrices of the CPU training ops in the kernels' linear
 * memory. A matrix is kept twice: as stored ([rows, cols], for the forward)
 * and transposed ([cols, rows], so the input gradient dy · W is the same
 * kernel, x · w^T, as the forward). bf16 stays bf16 (the transpose moves
 * 16-bit words, exactly); f16 is widened to f32 (the kernels read f32 or bf16).
 */
import type { WeightData } from "../../backends/backend.js";
import { decodeFloats } from "../../util/floats.js";
import type { TrainKernels } from "../wasm/trainKernels.js";
import type { TBuf, TMatrix } from "../trainOps.js";

export interface CpuBuf extends TBuf {
  readonly ptr: number;
}

export interface CpuMatrix extends TMatrix {
  readonly dtype: "f32" | "bf16";
  /** [rows, cols] */
  readonly ptr: number;
  /** [cols, rows] */
  readonly ptrT: number;
}

export class CpuMemory {
  constructor(readonly kernels: TrainKernels) {}

  alloc(numel: number, label: string): CpuBuf {
    if (!Number.isSafeInteger(numel) || numel < 0) throw new RangeError(`alloc ${label}: bad size ${numel}`);
    const { ptr, fresh } = this.kernels.heap.alloc(Math.max(1, numel) * 4);
    const b = { ptr, numel, label };
    if (!fresh) this.f32(b).fill(0);
    return b;
  }

  free(b: TBuf): void {
    this.kernels.heap.free((b as CpuBuf).ptr);
  }

  /** A view of the buffer's floats (views die when the memory grows: take a fresh one after any alloc). */
  f32(b: TBuf, numel = b.numel, offset = 0): Float32Array {
    return new Float32Array(this.kernels.memory.buffer, (b as CpuBuf).ptr + offset * 4, numel);
  }

  uploadMatrix(data: WeightData, label: string): CpuMatrix {
    if (data.shape.length !== 2) throw new RangeError(`${label}: a matrix needs 2 dimensions, got [${data.shape}]`);
    const [rows, cols] = data.shape as [number, number];
    const n = rows * cols;
    const heap = this.kernels.heap;
    if (data.dtype === "BF16") {
      const ptr = heap.alloc(n * 2).ptr;
      const ptrT = heap.alloc(n * 2).ptr;
      const buf = this.kernels.memory.buffer;
      new Uint8Array(buf, ptr, n * 2).set(data.bytes.subarray(0, n * 2));
      const src = new Uint16Array(buf, ptr, n), dst = new Uint16Array(buf, ptrT, n);
      transposeInto(dst, src, rows, cols);
      return { rows, cols, label, dtype: "bf16", ptr, ptrT };
    }
    const ptr = heap.alloc(n * 4).ptr;
    const ptrT = heap.alloc(n * 4).ptr;
    const buf = this.kernels.memory.buffer;
    const src = new Float32Array(buf, ptr, n);
    src.set(decodeFloats(data.bytes, 0, n, data.dtype === "F32" ? "f32" : "f16"));
    transposeInto(new Float32Array(buf, ptrT, n), src, rows, cols);
    return { rows, cols, label, dtype: "f32", ptr, ptrT };
  }

  freeMatrix(m: TMatrix): void {
    this.kernels.heap.free((m as CpuMatrix).ptr);
    this.kernels.heap.free((m as CpuMatrix).ptrT);
  }
}

/** dst [cols, rows] = src [rows, cols]^T. */
function transposeInto(dst: Uint16Array | Float32Array, src: Uint16Array | Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c]!;
}
