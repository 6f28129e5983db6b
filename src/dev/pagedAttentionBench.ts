/**
 * @module dev/pagedAttentionBench
 *
 * Paged-attention shapes for the kernel lab (kernelBench.ts): `numSeqs`
 * sequences of `context` tokens under full attention (every token admitted)
 * laid out as the dual cache holds them, each head's ring of the last W
 * tokens and its older ones in global pages at shuffled page ids, then a
 * chunk of T queries per sequence, all in one batched call (pagedAttention.ts's
 * per-sequence records).
 */
import type { CpuKernels } from "../backends/cpu/kernels.js";
import {
  PAGE_SIZE, PAGED_SEQ_FIELDS, PS_ADM_STRIDE, PS_FRESH_ADM, PS_GLOBAL_STRIDE, PS_GLOBAL_TABLE, PS_NUM_GLOBAL, PS_QPOS0, PS_RING_ADM, PS_RING_STRIDE, PS_RING_TABLE, PS_ROW0, PS_T, PS_W,
  type KvDType, type PagedAttentionParams, type PagedAttentionPointers,
} from "../backends/cpu/pagedAttention.js";
import { createRandom } from "../util/random.js";

export interface PagedShape {
  readonly numQueries: number;
  /** Tokens before the chunk. */
  readonly context: number;
  readonly kvDType: KvDType;
  /** Global tokens of each KV head, when not all of them (ragged heads); default: every token before the ring. */
  readonly numGlobal?: readonly number[];
  /** Sequences of this shape in the call (a step of several decodes); default 1. */
  readonly numSeqs?: number;
}

export interface PagedCall {
  readonly ptrs: PagedAttentionPointers;
  readonly params: PagedAttentionParams;
  /** Flops of the call: 4 per visible (query, head, key) and head-dim element. */
  readonly flops: number;
  /** Frees the call's memory. */
  free(): void;
}

/** Lays a shape out in the kernels' memory (6 heads, 2 KV heads, headDim 64, W = 256: the default model). */
export function setUpPagedCall(k: CpuKernels, s: PagedShape, seed = 1): PagedCall {
  const random = createRandom(seed);
  const [Hq, Hkv, d, W] = [6, 2, 64, 256];
  const S = s.numSeqs ?? 1, T = s.numQueries, ringTokens = Math.min(s.context, W);
  const numGlobal = s.numGlobal ?? [Math.max(0, s.context - W), Math.max(0, s.context - W)];
  const ringPages = W / PAGE_SIZE;
  const globalPages = numGlobal.map((n) => Math.ceil(n / PAGE_SIZE));
  const rowStride = ringPages + Math.max(...globalPages);
  const pagesPerSeq = Hkv * ringPages + globalPages.reduce((a, b) => a + b, 0);
  const numPages = S * pagesPerSeq;
  const elemBytes = s.kvDType === "f32" ? 4 : 2;
  const pageBytes = numPages * PAGE_SIZE * d * elemBytes;
  const qBytes = S * T * Hq * d * 4, freshBytes = S * T * Hkv * d * 4;
  const blocks = [
    k.alloc(qBytes), k.alloc(qBytes), k.alloc(freshBytes), k.alloc(freshBytes), k.alloc(pageBytes), k.alloc(pageBytes),
    k.alloc(S * PAGED_SEQ_FIELDS * 4), k.alloc(S * Hkv * rowStride * 4), k.alloc(S * Hkv * 4), k.alloc(S * Hkv * W),
  ];
  const [out, q, kFresh, vFresh, kPages, vPages, seqs, tables, counts, flags] = blocks;
  const buffer = k.buffer();
  for (const [ptr, n] of [[q, qBytes], [kFresh, freshBytes], [vFresh, freshBytes]] as const) {
    new Float32Array(buffer, ptr, n / 4).forEach((_, i, a) => (a[i] = random() * 2 - 1));
  }
  // 16-bit pages: random halves/bfloats near 1 in magnitude; f32 pages: random values in [-1, 1)
  for (const ptr of [kPages, vPages]) {
    if (elemBytes === 4) new Float32Array(buffer, ptr, pageBytes / 4).forEach((_, i, a) => (a[i] = random() * 2 - 1));
    else new Uint16Array(buffer, ptr, pageBytes / 2).forEach((_, i, a) => (a[i] = (s.kvDType === "f16" ? 0x3800 : 0x3f00) | (random() * 0x100) | (random() < 0.5 ? 0x8000 : 0)));
  }
  // shuffled page ids: pages of one head are not neighbours in memory, as in a long-running pool
  const order = Array.from({ length: numPages }, (_, i) => i);
  for (let i = numPages - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const table = new Int32Array(buffer, tables, S * Hkv * rowStride);
  const record = new Int32Array(buffer, seqs, S * PAGED_SEQ_FIELDS);
  let next = 0;
  for (let sq = 0; sq < S; sq++) {
    for (let g = 0; g < Hkv; g++) {
      const row = (sq * Hkv + g) * rowStride;
      for (let i = 0; i < ringPages; i++) table[row + i] = order[next++];
      for (let i = 0; i < globalPages[g]; i++) table[row + ringPages + i] = order[next++];
    }
    new Int32Array(buffer, counts + sq * Hkv * 4, Hkv).set(numGlobal);
    const r = sq * PAGED_SEQ_FIELDS;
    record[r + PS_ROW0] = sq * T;
    record[r + PS_T] = T;
    record[r + PS_QPOS0] = s.context;
    record[r + PS_W] = W;
    record[r + PS_RING_TABLE] = tables + sq * Hkv * rowStride * 4;
    record[r + PS_RING_STRIDE] = rowStride;
    record[r + PS_GLOBAL_TABLE] = tables + (sq * Hkv * rowStride + ringPages) * 4;
    record[r + PS_GLOBAL_STRIDE] = rowStride;
    record[r + PS_NUM_GLOBAL] = counts + sq * Hkv * 4;
    record[r + PS_RING_ADM] = flags + sq * Hkv * W;
    record[r + PS_ADM_STRIDE] = W;
    record[r + PS_FRESH_ADM] = 0;
  }
  new Uint8Array(buffer, flags, S * Hkv * W).fill(1);
  const params: PagedAttentionParams = {
    numSeqs: S, numHeads: Hq, numKvHeads: Hkv, headDim: d, scale: 1 / 8, kvDType: s.kvDType,
    pagesFinite: true, // as the engine runs while no write saw an f16 infinity or NaN
  };
  let keys = 0;
  for (let g = 0; g < Hkv; g++) keys += T * (ringTokens + numGlobal[g]) + (T * (T + 1)) / 2;
  return {
    ptrs: { out, q, kFresh, vFresh, kPages, vPages, seqs }, params, flops: S * keys * (Hq / Hkv) * d * 4,
    free: () => blocks.forEach((ptr) => k.free(ptr)),
  };
}
