/**
 * @module backends/cpu/pagedAttentionJs
 *
 * Paged attention (pagedAttention.ts's batch contract) in plain TypeScript
 * with an online softmax: the reference kernels' version, fast enough to run
 * the engine's tests on.
 */
import { ringPosition } from "../stepLayout.js";
import { createKvReader, freshVisibility, PAGE_SIZE, readPagedSeqs, validatePagedCall, type PagedAttentionParams, type PagedAttentionPointers } from "./pagedAttention.js";

export function jsPagedAttention(buffer: ArrayBufferLike, ptrs: PagedAttentionPointers, p: PagedAttentionParams): void {
  const { numHeads, numKvHeads, headDim: d, scale, kvDType } = p;
  const seqs = readPagedSeqs(buffer, ptrs.seqs, p.numSeqs);
  validatePagedCall(buffer, seqs, p);
  const group = numHeads / numKvHeads;
  const numRows = seqs.reduce((n, s) => Math.max(n, s.row0 + s.numQueries), 0);
  const q = new Float32Array(buffer, ptrs.q, numRows * numHeads * d);
  const out = new Float32Array(buffer, ptrs.out, numRows * numHeads * d);
  const kFresh = new Float32Array(buffer, ptrs.kFresh, numRows * numKvHeads * d);
  const vFresh = new Float32Array(buffer, ptrs.vFresh, numRows * numKvHeads * d);
  // NOTE: views up to the end of the buffer; slots are bounded by the tables the caller built
  const numElems = Math.floor((buffer.byteLength - ptrs.kPages) / (kvDType === "f32" ? 4 : 2));
  const kRead = createKvReader(buffer, ptrs.kPages, numElems, kvDType);
  const vRead = createKvReader(buffer, ptrs.vPages, Math.floor((buffer.byteLength - ptrs.vPages) / (kvDType === "f32" ? 4 : 2)), kvDType);
  const acc = new Float64Array(d);

  for (const s of seqs) {
    const W = s.window;
    const numRing = Math.min(s.numCached, W);
    const numGlobalAll = new Int32Array(buffer, s.numGlobal, numKvHeads);
    for (let r = 0; r < s.numQueries; r++) {
      const pos = s.numCached + r;
      for (let h = 0; h < numHeads; h++) {
        const g = Math.floor(h / group);
        const qBase = ((s.row0 + r) * numHeads + h) * d;
        let max = -Infinity;
        let sum = 0;
        acc.fill(0);
        // online softmax: rescale the running sums whenever a larger logit arrives
        const visit = (k: (i: number) => number, kAt: number, v: (i: number) => number, vAt: number) => {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += q[qBase + i] * k(kAt + i);
          const score = dot * scale;
          if (score > max) {
            const c = Math.exp(max - score);
            sum *= c;
            for (let i = 0; i < d; i++) acc[i] *= c;
            max = score;
          }
          const w = Math.exp(score - max);
          sum += w;
          for (let i = 0; i < d; i++) acc[i] += w * v(vAt + i);
        };
        const ringTable = new Int32Array(buffer, s.ringTable + g * s.ringStride * 4, W / PAGE_SIZE);
        const ringAdm = new Uint8Array(buffer, s.ringAdm + g * s.admStride, W);
        for (let o = 0; o < numRing; o++) {
          const kp = ringPosition(o, s.numCached, W);
          if (kp > pos || (pos - kp >= W && !ringAdm[o])) continue;
          const at = (ringTable[o >> 4] * PAGE_SIZE + (o & 15)) * d;
          visit(kRead, at, vRead, at);
        }
        const numGlobal = numGlobalAll[g];
        const globalTable = new Int32Array(buffer, s.globalTable + g * s.globalStride * 4, Math.ceil(numGlobal / PAGE_SIZE));
        for (let t = 0; t < numGlobal; t++) {
          const at = (globalTable[t >> 4] * PAGE_SIZE + (t & 15)) * d;
          visit(kRead, at, vRead, at);
        }
        const fk = (i: number) => kFresh[i];
        const fv = (i: number) => vFresh[i];
        const isFreshVisible = freshVisibility(buffer, s, g);
        for (let j = 0; j <= r; j++) {
          if (!isFreshVisible(r, j)) continue;
          const at = ((s.row0 + j) * numKvHeads + g) * d;
          visit(fk, at, fv, at);
        }
        for (let i = 0; i < d; i++) out[qBase + i] = acc[i] / sum;
      }
    }
  }
}
