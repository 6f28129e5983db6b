/**
 * @module backends/webgpu/f16Rows
 *
 * The f16 copy of a matmul's x that the f16-operand tiles read
 * (kernels/matmulF16Kernels.ts): x f32 [rows, K] -> f16 [rows, K], two
 * halves per u32 word, in a buffer of its own that grows as needed and never
 * shrinks. One copy serves every matmul of the same x while x is unchanged
 * (q, k and v read one x; gate and up another; every row part of a split
 * weight): the copy remembers which tensor, rows and K it holds
 * and the tensor's write version (gpuTensor.ts), and is made again when any
 * of them differs.
 *
 * Ordering: the copy is recorded before the matmuls that read it, in the
 * same command stream, and a later copy (another x) after them; WebGPU runs
 * the dispatches of a stream in order with their storage writes visible to
 * the next, so no reader sees a half-written or newer copy. A grown buffer
 * replaces the old one only after the commands recorded so far
 * (GpuMemory.free defers its destruction).
 */
import type { GpuContext } from "./gpuContext.js";
import type { GpuTensor } from "./gpuTensor.js";
import { f16RowsKernel } from "./kernels/matmulF16Kernels.js";

export class F16Rows {
  readonly #ctx: GpuContext;
  /** f16 [rows, K] of the tensor `#holds` names (null until the first copy). */
  #buffer: GPUBuffer | null = null;
  /** What `#buffer` holds: x's id, its version when copied, rows and K. */
  #holds: { id: number; version: number; rows: number; K: number } | null = null;

  constructor(ctx: GpuContext) {
    this.#ctx = ctx;
  }

  /** The f16 copy of x's first `rows` rows of K (rows * K even), recorded now unless the last copy is of the same x, unchanged. */
  of(x: GpuTensor, rows: number, K: number): GPUBuffer {
    const h = this.#holds;
    if (this.#buffer && h && h.id === x.id && h.version === x.version && h.rows === rows && h.K === K) return this.#buffer;
    const { mem, rt } = this.#ctx;
    const words = (rows * K) / 2;
    if (!Number.isInteger(words)) throw new Error(`f16 rows: ${rows} x ${K} is not whole words`);
    if (!this.#buffer || this.#buffer.size < words * 4) {
      if (this.#buffer) mem.free(this.#buffer);
      this.#buffer = mem.buffer(words * 4, "matmul x f16");
    }
    rt.dispatch(f16RowsKernel(), [this.#buffer, x.buffer], Math.ceil(words / 256), [words]);
    this.#holds = { id: x.id, version: x.version, rows, K };
    return this.#buffer;
  }
}
