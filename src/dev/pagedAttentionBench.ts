/**
 * @module dev/pagedAttentionBench
 *
 * Paged-attention shapes for the kernel lab (kernelBench.ts): a sequence of
 * `context` tokens under full attention (every token admitted) laid out as the
 * dual cache holds it, the ring's last W tokens and the older ones in global
 * pages at shuffled page ids, then a chunk of T queries.
 */
import type { CpuKernels } from "../backends/cpu/kernels.js";
import { PAGE_SIZE, type KvDType, type PagedAttentionParams, type PagedAttentionPointers } from "../backends/cpu/pagedAttention.js";

export interface PagedShape {
  readonly numQueries: number;
  /** Tokens before the chunk. */
  readonly context: number;
  readonly kvDType: KvDType;
  /** Global tokens of each KV head, when not all of them (ragged heads); default: every token before the ring. */
  readonly numGlobal?: readonly number[];
}

export interface PagedCall {
  readonly ptrs: PagedAttentionPointers;
  readonly params: PagedAttentionParams;
  /** Flops of the call: 4 per visible (query, head, key) and head-dim element. */
  readonly flops: number;
}

/** Lays a shape out in the kernels' memory (6 heads, 2 KV heads, headDim 64, W = 256: the default model). */
export function setUpPagedCall(k: CpuKernels, s: PagedShape): PagedCall {
  const [Hq, Hkv, d, W] = [6, 2, 64, 256];
  const T = s.numQueries, ringTokens = Math.min(s.context, W);
  const numGlobal = s.numGlobal ?? [Math.max(0, s.context - W), Math.max(0, s.context - W)];
  const ringPages = W / PAGE_SIZE;
  const globalPages = numGlobal.map((n) => Math.ceil(n / PAGE_SIZE));
  const rowStride = ringPages + Math.max(...globalPages);
  const numPages = Hkv * ringPages + globalPages.reduce((a, b) => a + b, 0);
  const elemBytes = s.kvDType === "f32" ? 4 : 2;
  const pageBytes = numPages * PAGE_SIZE * d * elemBytes;
  const qBytes = T * Hq * d * 4, freshBytes = T * Hkv * d * 4;
  const ptrs: PagedAttentionPointers = {
    out: k.alloc(qBytes), q: k.alloc(qBytes), kFresh: k.alloc(freshBytes), vFresh: k.alloc(freshBytes),
    kPages: k.alloc(pageBytes), vPages: k.alloc(pageBytes), blockTables: k.alloc(Hkv * rowStride * 4),
    numRing: k.alloc(Hkv * 4), numGlobal: k.alloc(Hkv * 4), ringPositions: k.alloc(Hkv * W * 4), ringAdmitted: k.alloc(Hkv * W),
  };
  const buffer = k.buffer();
  for (const [ptr, n] of [[ptrs.q, qBytes], [ptrs.kFresh, freshBytes], [ptrs.vFresh, freshBytes]] as const) {
    new Float32Array(buffer, ptr, n / 4).forEach((_, i, a) => (a[i] = Math.random() * 2 - 1));
  }
  // 16-bit pages: random halves/bfloats near 1 in magnitude; f32 pages: random values in [-1, 1)
  for (const ptr of [ptrs.kPages, ptrs.vPages]) {
    if (elemBytes === 4) new Float32Array(buffer, ptr, pageBytes / 4).forEach((_, i, a) => (a[i] = Math.random() * 2 - 1));
    else new Uint16Array(buffer, ptr, pageBytes / 2).forEach((_, i, a) => (a[i] = (s.kvDType === "f16" ? 0x3800 : 0x3f00) | (Math.random() * 0x100) | (Math.random() < 0.5 ? 0x8000 : 0)));
  }
  const order = Array.from({ length: numPages }, (_, i) => i).sort(() => Math.random() - 0.5);
  const tables = new Int32Array(buffer, ptrs.blockTables, Hkv * rowStride);
  const positions = new Int32Array(buffer, ptrs.ringPositions, Hkv * W);
  let next = 0;
  for (let g = 0; g < Hkv; g++) {
    for (let i = 0; i < ringPages; i++) tables[g * rowStride + i] = order[next++];
    for (let i = 0; i < globalPages[g]; i++) tables[g * rowStride + ringPages + i] = order[next++];
    for (let p = s.context - ringTokens; p < s.context; p++) positions[g * W + (p % W)] = p;
  }
  new Int32Array(buffer, ptrs.numRing, Hkv).fill(ringTokens);
  new Int32Array(buffer, ptrs.numGlobal, Hkv).set(numGlobal);
  new Uint8Array(buffer, ptrs.ringAdmitted, Hkv * W).fill(1);
  const params: PagedAttentionParams = {
    numQueries: T, qPos0: s.context, numHeads: Hq, numKvHeads: Hkv, headDim: d, scale: 1 / 8, window: W, rowStride, kvDType: s.kvDType,
    pagesFinite: true, // as the engine runs while no write saw an f16 infinity or NaN
  };
  let keys = 0;
  for (let g = 0; g < Hkv; g++) keys += T * (ringTokens + numGlobal[g]) + (T * (T + 1)) / 2;
  return { ptrs, params, flops: keys * (Hq / Hkv) * d * 4 };
}
