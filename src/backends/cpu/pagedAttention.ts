/**
 * @module backends/cpu/pagedAttention
 *
 * The attention of WG-KV's dual cache for a batch of sequences, as a CPU
 * kernel contract and its plain reference. One call serves a layer of a
 * whole step: every sequence's queries (a prefill chunk or one decode token)
 * attend to (1) the head's local ring, masked by docs/design.md §3's rule, (2) the
 * head's global pages, all visible, and (3) the chunk's own fresh keys,
 * causally. Its cost follows what is visible: ring + global + chunk, never N².
 *
 * Memory layouts (pointers are byte offsets into the kernels' memory):
 *   q, out:           f32 [rows, Hq, d]    every sequence's rows, back to back
 *   kFresh, vFresh:   f32 [rows, Hkv, d]   the chunks' rotated keys and values
 *   kPages, vPages:   kvDType [numPages, 16, d]; slot s = page * 16 + offset
 *   seqs:             i32 [numSeqs, PAGED_SEQ_FIELDS], one record per sequence (below)
 * A record names, per sequence: its first row, its T queries, the tokens it
 * has cached (the first query's position), its window, and pointers to its
 * KV heads' ring page ids, global page ids, global token counts and ring
 * admit flags (u8), each with a per-head stride, and to the chunk's own
 * admit flags (u8, from its first row; 0: none, every chunk key at or before
 * a query is visible) with their per-head stride: a chunk key more than W
 * before a query is visible only if admitted. Ring offset o of a head
 * holding n tokens holds position o + W * floor((n - 1 - o) / W).
 * The layout is mirrored in wasm/assembly/pagedDescriptor.ts (a test pins it).
 */

import type { KvDType } from "../backend.js";
import { PAGE_SIZE, ringPosition } from "../stepLayout.js";
import { createHalfReader } from "../../util/halfFloat.js";

export type { KvDType };
export { PAGE_SIZE };

// ---- a sequence's record: i32 [numSeqs, PAGED_SEQ_FIELDS]
export const PS_ROW0 = 0;
export const PS_T = 1;
export const PS_QPOS0 = 2;
export const PS_W = 3;
export const PS_RING_TABLE = 4;
export const PS_RING_STRIDE = 5;
export const PS_GLOBAL_TABLE = 6;
export const PS_GLOBAL_STRIDE = 7;
export const PS_NUM_GLOBAL = 8;
export const PS_RING_ADM = 9;
export const PS_ADM_STRIDE = 10;
export const PS_FRESH_ADM = 11;
export const PS_FRESH_STRIDE = 12;
export const PAGED_SEQ_FIELDS = 14;

export interface PagedAttentionParams {
  readonly numSeqs: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly scale: number;
  readonly kvDType: KvDType;
  /**
   * The pages hold no infinity or NaN (the pool's writes saw none), so a kernel
   * may widen f16 pages without those cases and skip guarding hidden keys
   * (0 * inf); it changes nothing else. Default false.
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
  readonly seqs: number;
}

/** A kernel set that implements paged attention natively; it may yield to the event loop through `yieldNow`. */
export interface PagedAttentionKernel {
  pagedAttention(ptrs: PagedAttentionPointers, p: PagedAttentionParams, maybeYield?: () => Promise<void> | null): void | Promise<void>;
}

/** One sequence's record, read from kernel memory. */
export interface PagedSeq {
  readonly row0: number;
  readonly numQueries: number;
  readonly numCached: number;
  readonly window: number;
  readonly ringTable: number;
  readonly ringStride: number;
  readonly globalTable: number;
  readonly globalStride: number;
  readonly numGlobal: number;
  readonly ringAdm: number;
  readonly admStride: number;
  /** Byte address of the chunk's first row's admit flag (KV head 0), or 0: every chunk key is visible causally. */
  readonly freshAdm: number;
  readonly freshStride: number;
}

export function readPagedSeqs(buffer: ArrayBufferLike, ptr: number, numSeqs: number): PagedSeq[] {
  const r = new Int32Array(buffer, ptr, numSeqs * PAGED_SEQ_FIELDS);
  // NOTE: addresses are u32: past 2 GiB of memory an i32 read would make them negative
  const u = new Uint32Array(buffer, ptr, numSeqs * PAGED_SEQ_FIELDS);
  return Array.from({ length: numSeqs }, (_, s) => {
    const at = s * PAGED_SEQ_FIELDS;
    return {
      row0: r[at + PS_ROW0], numQueries: r[at + PS_T], numCached: r[at + PS_QPOS0], window: r[at + PS_W],
      ringTable: u[at + PS_RING_TABLE], ringStride: r[at + PS_RING_STRIDE], globalTable: u[at + PS_GLOBAL_TABLE],
      globalStride: r[at + PS_GLOBAL_STRIDE], numGlobal: u[at + PS_NUM_GLOBAL], ringAdm: u[at + PS_RING_ADM], admStride: r[at + PS_ADM_STRIDE],
      freshAdm: u[at + PS_FRESH_ADM], freshStride: r[at + PS_FRESH_STRIDE],
    };
  });
}

/** Checks a call's shape; throws a RangeError naming what is wrong. */
export function validatePagedCall(buffer: ArrayBufferLike, seqs: readonly PagedSeq[], p: PagedAttentionParams): void {
  if (p.numHeads % p.numKvHeads !== 0) throw new RangeError(`paged attention: numHeads ${p.numHeads} is not a multiple of numKvHeads ${p.numKvHeads}`);
  seqs.forEach((s, i) => {
    if (s.window <= 0 || s.window % PAGE_SIZE !== 0) throw new RangeError(`paged attention: sequence ${i} has window ${s.window}, not a multiple of 16`);
    const numGlobal = new Int32Array(buffer, s.numGlobal, p.numKvHeads);
    for (let g = 0; g < p.numKvHeads; g++) if (!(numGlobal[g] >= 0)) throw new RangeError(`paged attention: sequence ${i}, KV head ${g} has ${numGlobal[g]} global tokens`);
  });
}

/** The visible keys of one query as slots (pages) and fresh rows, in the order ring, global, chunk. */
export interface VisibleKeys {
  readonly slots: number[];
  readonly freshRows: number[];
}

/** What query r of sequence `s`, KV head g, sees (docs/design.md §3). */
export function visibleKeys(buffer: ArrayBufferLike, s: PagedSeq, g: number, r: number, numKvHeads: number): VisibleKeys {
  const W = s.window;
  const pos = s.numCached + r;
  const numRing = Math.min(s.numCached, W);
  const ringTable = new Int32Array(buffer, s.ringTable + g * s.ringStride * 4, W / PAGE_SIZE);
  const ringAdm = new Uint8Array(buffer, s.ringAdm + g * s.admStride, W);
  const numGlobal = new Int32Array(buffer, s.numGlobal, numKvHeads)[g];
  const globalTable = new Int32Array(buffer, s.globalTable + g * s.globalStride * 4, Math.ceil(numGlobal / PAGE_SIZE));
  const slots: number[] = [];
  for (let o = 0; o < numRing; o++) {
    const kp = ringPosition(o, s.numCached, W);
    if (kp > pos || (pos - kp >= W && !ringAdm[o])) continue;
    slots.push(ringTable[o >> 4] * PAGE_SIZE + (o & 15));
  }
  for (let t = 0; t < numGlobal; t++) slots.push(globalTable[t >> 4] * PAGE_SIZE + (t & 15));
  const freshRows: number[] = [];
  const isFreshVisible = freshVisibility(buffer, s, g);
  for (let j = 0; j <= r; j++) if (isFreshVisible(r, j)) freshRows.push(s.row0 + j);
  return { slots, freshRows };
}

/** Whether chunk query r of `s` (KV head g) sees chunk key j <= r: within W of it, or admitted (its flag in the record's chunk flags). */
export function freshVisibility(buffer: ArrayBufferLike, s: PagedSeq, g: number): (r: number, j: number) => boolean {
  if (s.freshAdm === 0) return () => true;
  const flags = new Uint8Array(buffer, s.freshAdm + g * s.freshStride, s.numQueries);
  return (r, j) => r - j < s.window || flags[j] !== 0;
}

/** Reads element i of a page store as f32. */
export function createKvReader(buffer: ArrayBufferLike, ptr: number, numElements: number, dtype: KvDType): (i: number) => number {
  if (dtype === "f32") {
    const a = new Float32Array(buffer, ptr, numElements);
    return (i) => a[i];
  }
  return createHalfReader(new Uint16Array(buffer, ptr, numElements), dtype);
}

/** The highest slot the call's tables reach, + 1 (views of the pages stop there). */
function numSlotsReached(buffer: ArrayBufferLike, seqs: readonly PagedSeq[], numKvHeads: number): number {
  let maxPage = 0;
  for (const s of seqs) {
    const numGlobal = new Int32Array(buffer, s.numGlobal, numKvHeads);
    for (let g = 0; g < numKvHeads; g++) {
      const ring = new Int32Array(buffer, s.ringTable + g * s.ringStride * 4, Math.ceil(Math.min(s.numCached, s.window) / PAGE_SIZE));
      const global = new Int32Array(buffer, s.globalTable + g * s.globalStride * 4, Math.ceil(numGlobal[g] / PAGE_SIZE));
      for (const page of ring) maxPage = Math.max(maxPage, page);
      for (const page of global) maxPage = Math.max(maxPage, page);
    }
  }
  return (maxPage + 1) * PAGE_SIZE;
}

/** The semantic reference: plain loops, f64 accumulation, two-pass softmax. */
export function referencePagedAttention(buffer: ArrayBufferLike, ptrs: PagedAttentionPointers, p: PagedAttentionParams): void {
  const { numHeads, numKvHeads, headDim: d, scale, kvDType } = p;
  const seqs = readPagedSeqs(buffer, ptrs.seqs, p.numSeqs);
  validatePagedCall(buffer, seqs, p);
  const group = numHeads / numKvHeads;
  const numRows = seqs.reduce((n, s) => Math.max(n, s.row0 + s.numQueries), 0);
  const q = new Float32Array(buffer, ptrs.q, numRows * numHeads * d);
  const out = new Float32Array(buffer, ptrs.out, numRows * numHeads * d);
  const kFresh = new Float32Array(buffer, ptrs.kFresh, numRows * numKvHeads * d);
  const vFresh = new Float32Array(buffer, ptrs.vFresh, numRows * numKvHeads * d);
  const numElems = numSlotsReached(buffer, seqs, numKvHeads) * d;
  const kPage = createKvReader(buffer, ptrs.kPages, numElems, kvDType);
  const vPage = createKvReader(buffer, ptrs.vPages, numElems, kvDType);

  for (const s of seqs) {
    for (let r = 0; r < s.numQueries; r++) {
      for (let h = 0; h < numHeads; h++) {
        const g = Math.floor(h / group);
        const qBase = ((s.row0 + r) * numHeads + h) * d;
        const { slots, freshRows } = visibleKeys(buffer, s, g, r, numKvHeads);
        const keys = [
          ...slots.map((slot) => ({ k: kPage, v: vPage, at: slot * d })),
          ...freshRows.map((row) => ({ k: (i: number) => kFresh[i], v: (i: number) => vFresh[i], at: (row * numKvHeads + g) * d })),
        ];
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
}
