/**
 * @module backends/cpu/ropeAngles
 *
 * RoPE's cos and sin for the rows of a batch, in kernel memory as the rope
 * kernel reads them: f32 [rows, 2, half] (cos, then sin, per frequency). A
 * forward rotates q and k of every layer at the same positions, so the last
 * table is kept and reused while the positions stay the same.
 */
import type { RopeTable } from "../backend.js";
import type { CpuKernels } from "./kernels.js";

export class RopeAngles {
  #ptr = 0;
  #capacity = 0; // rows the buffer holds
  #table: RopeTable | null = null;
  #positions = new Int32Array(0);

  constructor(readonly kernels: CpuKernels) {}

  /** Pointer to the cos/sin table of the rows at `positions`. */
  get(table: RopeTable, positions: Int32Array): number {
    const rows = positions.length;
    if (this.#table === table && sameValues(this.#positions, positions)) return this.#ptr;
    const half = table.invFreq.length;
    if (rows > this.#capacity) {
      if (this.#ptr) this.kernels.free(this.#ptr);
      this.#capacity = Math.max(rows, 2 * this.#capacity);
      this.#ptr = this.kernels.alloc(this.#capacity * 2 * half * 4);
    }
    const out = new Float32Array(this.kernels.buffer(), this.#ptr, rows * 2 * half);
    for (let t = 0; t < rows; t++) {
      const pos = positions[t];
      for (let i = 0; i < half; i++) {
        // NOTE: the angle is rounded to f32 first, as transformers computes it.
        const angle = Math.fround(pos * table.invFreq[i]);
        out[t * 2 * half + i] = Math.cos(angle);
        out[t * 2 * half + half + i] = Math.sin(angle);
      }
    }
    this.#table = table;
    this.#positions = positions.slice();
    return this.#ptr;
  }
}

function sameValues(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
