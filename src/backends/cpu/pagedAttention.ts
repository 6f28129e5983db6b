/**
 * @module backends/cpu/pagedAttention
 *
 * The attention of WG-KV's dual cache, as a CPU kernel contract and its plain
 * reference. One kernel serves prefill chunks and decode steps: the queries of
 * a chunk attend to (1) the head's local ring, masked by DESIGN.md §3's rule,
 * (2) the head's global pages, all visible, and (3) the chunk's own fresh keys,
 * causally. Its cost follows what is visible: ring + global + chunk, never N².
 *
 * Memory layouts (pointers are byte offsets into the kernels' memory):
 *   q, out:           f32 [T, Hq, d]
 *   kFresh, vFresh:   f32 [T, Hkv, d]      the chunk's rotated keys and values
 *   kPages, vPages:   kvDType [numPages, 16, d]; slot s = page * 16 + offset
 *   blockTables:      i32 [Hkv, rowStride] W/16 ring page ids, then global page ids
 *   numRing:          i32 [Hkv]            ring offsets in use
 *   numGlobal:        i32 [Hkv]            global tokens to read (the pages listed hold them in order)
 *   ringPositions:    i32 [Hkv, W]         absolute position of each ring offset
 *   ringAdmitted:     u8  [Hkv, W]         admit flag of each ring offset
 */

import type { KvDType } from "../backend.js";
import { f16BitsToF32 } from "../../util/halfFloat.js";

export type { KvDType };

export const PAGE_SIZE = 16;

export interface PagedAttentionParams {
  /** Queries in the chunk (T); must not exceed the window, so fresh keys are always local. */
  readonly numQueries: number;
  /** Position of the first query. */
  readonly qPos0: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly scale: number;
  /** Local window W (a multiple of 16). */
  readonly window: number;
  /** Entries per block-table row. */
  readonly rowStride: number;
  readonly kvDType: KvDType;
  /**
   * f16 pages hold no infinity or NaN (the pool's writes saw none), so a kernel
   * may widen them without those cases; it changes nothing else. Default false.
   */
  readonly pagesFinite?: boolean;
}

export interface PagedAttentionPointers {
  readonly out: number;
  readonly q: number;
  readonly kFresh: number;
  readonly vFresh: number;
  readonly kPages: number;
  readonly vPages: number;
  readonly blockTables: number;
  readonly numRing: number;
  readonly numGlobal: number;
  readonly ringPositions: number;
  readonly ringAdmitted: number;
}

/** A kernel set that implements paged attention natively. */
export interface PagedAttentionKernel {
  pagedAttention(ptrs: PagedAttentionPointers, p: PagedAttentionParams): void;
}

/** Reads element i of a page store as f32. */
export function createKvReader(buffer: ArrayBufferLike, ptr: number, numElements: number, dtype: KvDType): (i: number) => number {
  if (dtype === "f32") {
    const a = new Float32Array(buffer, ptr, numElements);
    return (i) => a[i];
  }
  const bits = new Uint16Array(buffer, ptr, numElements);
  if (dtype === "bf16") {
    const scratch = new Float32Array(1);
    const scratchBits = new Uint32Array(scratch.buffer);
    return (i) => {
      scratchBits[0] = bits[i] << 16;
      return scratch[0];
    };
  }
  return (i) => f16BitsToF32(bits[i]);
}

/** Typed views of a paged-attention call's arguments, and the page elements its tables reach. */
export function pagedAttentionViews(buffer: ArrayBufferLike, ptrs: PagedAttentionPointers, p: PagedAttentionParams) {
  const { numQueries: T, numHeads, numKvHeads, headDim: d, window: W, rowStride } = p;
  const tables = new Int32Array(buffer, ptrs.blockTables, numKvHeads * rowStride);
  let maxPage = 0;
  for (let i = 0; i < tables.length; i++) if (tables[i] > maxPage) maxPage = tables[i];
  return {
    q: new Float32Array(buffer, ptrs.q, T * numHeads * d),
    out: new Float32Array(buffer, ptrs.out, T * numHeads * d),
    kFresh: new Float32Array(buffer, ptrs.kFresh, T * numKvHeads * d),
    vFresh: new Float32Array(buffer, ptrs.vFresh, T * numKvHeads * d),
    tables,
    numRing: new Int32Array(buffer, ptrs.numRing, numKvHeads),
    numGlobal: new Int32Array(buffer, ptrs.numGlobal, numKvHeads),
    ringPos: new Int32Array(buffer, ptrs.ringPositions, numKvHeads * W),
    ringAdm: new Uint8Array(buffer, ptrs.ringAdmitted, numKvHeads * W),
    /** elements of one page store up to the highest page any table names */
    pageElems: (maxPage + 1) * PAGE_SIZE * d,
  };
}

/** The semantic reference: plain loops, f64 accumulation, two-pass softmax. */
export function referencePagedAttention(buffer: ArrayBufferLike, ptrs: PagedAttentionPointers, p: PagedAttentionParams): void {
  const { numQueries: T, qPos0, numHeads, numKvHeads, headDim: d, scale, window: W, rowStride, kvDType } = p;
  if (T > W) throw new Error(`paged attention: chunk of ${T} queries exceeds the window ${W}`);
  const group = numHeads / numKvHeads;
  const { q, out, kFresh, vFresh, tables, numRing, numGlobal, ringPos, ringAdm, pageElems } = pagedAttentionViews(buffer, ptrs, p);
  const kPage = createKvReader(buffer, ptrs.kPages, pageElems, kvDType);
  const vPage = createKvReader(buffer, ptrs.vPages, pageElems, kvDType);
  const ringPages = W / PAGE_SIZE;

  for (let r = 0; r < T; r++) {
    const pos = qPos0 + r;
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor(h / group);
      const qBase = (r * numHeads + h) * d;
      // gather the visible keys as (reader, element offset) pairs
      const keys: { k: (i: number) => number; v: (i: number) => number; at: number }[] = [];
      for (let o = 0; o < numRing[g]; o++) {
        const kp = ringPos[g * W + o];
        if (kp > pos || (pos - kp >= W && !ringAdm[g * W + o])) continue;
        const slot = tables[g * rowStride + (o >> 4)] * PAGE_SIZE + (o & 15);
        keys.push({ k: kPage, v: vPage, at: slot * d });
      }
      for (let t = 0; t < numGlobal[g]; t++) {
        const slot = tables[g * rowStride + ringPages + (t >> 4)] * PAGE_SIZE + (t & 15);
        keys.push({ k: kPage, v: vPage, at: slot * d });
      }
      const fk = (i: number) => kFresh[i];
      const fv = (i: number) => vFresh[i];
      for (let j = 0; j <= r; j++) keys.push({ k: fk, v: fv, at: (j * numKvHeads + g) * d });

      const scores = new Float64Array(keys.length);
      let max = -Infinity;
      keys.forEach((key, n) => {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[qBase + i] * key.k(key.at + i);
        scores[n] = dot * scale;
        max = Math.max(max, scores[n]);
      });
      let sum = 0;
      for (let n = 0; n < scores.length; n++) sum += scores[n] = Math.exp(scores[n] - max);
      for (let i = 0; i < d; i++) {
        let acc = 0;
        keys.forEach((key, n) => (acc += scores[n] * key.v(key.at + i)));
        out[qBase + i] = acc / sum;
      }
    }
  }
}
