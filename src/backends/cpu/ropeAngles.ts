/**
 * @module backends/cpu/ropeAngles
 *
 * RoPE's cos and sin for a chunk of positions, in kernel memory as the rope
 * kernel reads them: f32 [T, 2, half] (cos, then sin, per frequency). A
 * forward rotates q and k of every layer at the same positions, so the last
 * table is kept and reused until the positions change.
 */
import type { RopeTable } from "../backend.js";
import type { CpuKernels } from "./kernels.js";

export class RopeAngles {
  #ptr = 0;
  #capacity = 0; // tokens the buffer holds
  #key: { table: RopeTable; startPos: number; numTokens: number } | null = null;

  constructor(readonly kernels: CpuKernels) {}

  /** Pointer to the cos/sin table of positions startPos .. startPos + numTokens. */
  get(table: RopeTable, startPos: number, numTokens: number): number {
    const k = this.#key;
    if (k && k.table === table && k.startPos === startPos && k.numTokens === numTokens) return this.#ptr;
    const half = table.invFreq.length;
    if (numTokens > this.#capacity) {
      this.#capacity = Math.max(numTokens, 2 * this.#capacity);
      this.#ptr = this.kernels.alloc(this.#capacity * 2 * half * 4);
    }
    const out = new Float32Array(this.kernels.buffer(), this.#ptr, numTokens * 2 * half);
    for (let t = 0; t < numTokens; t++) {
      const pos = startPos + t;
      for (let i = 0; i < half; i++) {
        // NOTE: the angle is rounded to f32 first, as transformers computes it.
        const angle = Math.fround(pos * table.invFreq[i]);
        out[t * 2 * half + i] = Math.cos(angle);
        out[t * 2 * half + half + i] = Math.sin(angle);
      }
    }
    this.#key = { table, startPos, numTokens };
    return this.#ptr;
  }
}
