/**
 * @module backends/cpu/pagedAttentionJs
 *
 * Paged attention in plain TypeScript with an online softmax: the fallback
 * when the kernels have no native version, and fast enough for tests.
 */
import type { PagedAttentionParams, PagedAttentionPointers } from "./pagedAttention.js";
import { PAGE_SIZE, pagedAttentionViews } from "./pagedAttention.js";

export function jsPagedAttention(buffer: ArrayBufferLike, ptrs: PagedAttentionPointers, p: PagedAttentionParams): void {
  const { numQueries: T, qPos0, numHeads, numKvHeads, headDim: d, scale, window: W, rowStride, kvDType } = p;
  if (T > W) throw new Error(`paged attention: chunk of ${T} queries exceeds the window ${W}`);
  const group = numHeads / numKvHeads;
  const { q, out, kFresh, vFresh, tables, numRing, numGlobal, ringPos, ringAdm, pageElems: numElems } = pagedAttentionViews(buffer, ptrs, p);
  const kRow = rowReader(buffer, ptrs.kPages, numElems, kvDType, d);
  const vRow = rowReader(buffer, ptrs.vPages, numElems, kvDType, d);
  const ringPages = W / PAGE_SIZE;
  const acc = new Float64Array(d);

  for (let r = 0; r < T; r++) {
    const pos = qPos0 + r;
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor(h / group);
      const qBase = (r * numHeads + h) * d;
      let max = -Infinity;
      let sum = 0;
      acc.fill(0);
      // online softmax: rescale the running sums whenever a larger logit arrives
      const visit = (ks: ArrayLike<number>, kAt: number, vs: ArrayLike<number>, vAt: number) => {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[qBase + i] * ks[kAt + i];
        const s = dot * scale;
        if (s > max) {
          const c = Math.exp(max - s);
          sum *= c;
          for (let i = 0; i < d; i++) acc[i] *= c;
          max = s;
        }
        const w = Math.exp(s - max);
        sum += w;
        for (let i = 0; i < d; i++) acc[i] += w * vs[vAt + i];
      };
      for (let o = 0; o < numRing[g]; o++) {
        const kp = ringPos[g * W + o];
        if (kp > pos || (pos - kp >= W && !ringAdm[g * W + o])) continue;
        const slot = tables[g * rowStride + (o >> 4)] * PAGE_SIZE + (o & 15);
        const [ks, kAt] = kRow(slot, 0);
        const [vs, vAt] = vRow(slot, 1);
        visit(ks, kAt, vs, vAt);
      }
      for (let t = 0; t < numGlobal[g]; t++) {
        const slot = tables[g * rowStride + ringPages + (t >> 4)] * PAGE_SIZE + (t & 15);
        const [ks, kAt] = kRow(slot, 0);
        const [vs, vAt] = vRow(slot, 1);
        visit(ks, kAt, vs, vAt);
      }
      for (let j = 0; j <= r; j++) {
        const at = (j * numKvHeads + g) * d;
        visit(kFresh, at, vFresh, at);
      }
      for (let i = 0; i < d; i++) out[qBase + i] = acc[i] / sum;
    }
  }
}

/** Returns (array, offset) of a slot's row as f32, decoding 16-bit rows into a scratch row. */
function rowReader(buffer: ArrayBufferLike, ptr: number, numElems: number, dtype: PagedAttentionParams["kvDType"], d: number): (slot: number, which: number) => [ArrayLike<number>, number] {
  if (dtype === "f32") {
    const a = new Float32Array(buffer, ptr, numElems);
    return (slot) => [a, slot * d];
  }
  const bits = new Uint16Array(buffer, ptr, numElems);
  const scratch = new Float32Array(d);
  const scratchBits = new Uint32Array(scratch.buffer);
  if (dtype === "bf16") {
    return (slot) => {
      for (let i = 0; i < d; i++) scratchBits[i] = bits[slot * d + i] << 16;
      return [scratch, 0];
    };
  }
  return (slot) => {
    for (let i = 0; i < d; i++) scratch[i] = halfToFloat(bits[slot * d + i]);
    return [scratch, 0];
  };
}

function halfToFloat(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * frac * 5.960464477539063e-8;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}
