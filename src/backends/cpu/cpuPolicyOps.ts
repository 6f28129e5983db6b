/**
 * @module backends/cpu/cpuPolicyOps
 *
 * The CPU backend's ops for the KV policies (docs/design.md §3): admission
 * by each sequence's rule, Quest's per-page key bounds and page choice, and
 * SnapKV's observation queries and attention-mass scores. These are light
 * next to matmul and attention, so they are plain loops over views of the
 * kernels' memory; they are also the reference the conformance suite
 * checks other backends against.
 */
import type { AttentionBatch, AttentionDims, KvTables } from "../backend.js";
import {
  ADMIT_FULL, ADMIT_GATE, ADMIT_LOCAL, ADMIT_RANDOM, ADMIT_SINKS, admissionHash, PAGE_SIZE, SEQ_ADMISSION, SEQ_ADMISSION_ARG,
  SEQ_ADMISSION_SEED, SEQ_FIELDS, f32FromBits, SEQ_NUM_ROWS, SEQ_OBSERVE, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW,
  SNAP_FIELDS, SNAP_HEAD, SNAP_LAYER, SNAP_NUM_GLOBAL, SNAP_NUM_OBS, SNAP_NUM_RING, SNAP_OFFSET, SNAP_SLOT, SNAP_WINDOW,
} from "../stepLayout.js";
import type { CpuKvOps, CpuKvPool } from "./cpuKvOps.js";
import { cpu, type CpuTensor } from "./cpuTensor.js";
import { createKvReader } from "./pagedAttention.js";

export class CpuPolicyOps {
  constructor(readonly kv: CpuKvOps) {}

  get #views() {
    return this.kv.views;
  }

  admit(flags: CpuTensor, scores: CpuTensor | null, offset: number, stride: number, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const { numKvHeads: H } = dims;
    const fields = this.#views.i32(cpu(batch.seqs), batch.numSeqs * SEQ_FIELDS);
    const out = this.#views.u8(flags);
    const score = scores ? this.#views.f32(scores) : null;
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS;
      const row0 = fields[f + SEQ_ROW_START], numRows = fields[f + SEQ_NUM_ROWS], startPos = fields[f + SEQ_START_POS];
      const kind = fields[f + SEQ_ADMISSION], arg = fields[f + SEQ_ADMISSION_ARG], seed = fields[f + SEQ_ADMISSION_SEED];
      // NOTE: compared in f32, as torch compares an f32 tensor with a Python float:
      // a score equal to f32(tau) is not admitted (in f64 it would exceed 0.1).
      const tau = f32FromBits(arg);
      if (kind === ADMIT_GATE && !score) throw new Error("admit: gate admission without gate scores");
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < numRows; t++) {
          const pos = startPos + t, at = offset + h * stride + row0 + t;
          let admitted: boolean;
          switch (kind) {
            case ADMIT_FULL: admitted = true; break;
            case ADMIT_LOCAL: admitted = false; break;
            case ADMIT_SINKS: admitted = pos < arg; break;
            case ADMIT_RANDOM: admitted = admissionHash(seed, layer, h, pos) < arg >>> 0; break;
            case ADMIT_GATE: admitted = score![at] > tau; break;
            default: throw new Error(`admit: unknown admission kind ${kind}`);
          }
          out[at] = admitted ? 1 : 0;
        }
      }
    }
  }

  writeRingFlags(flags: CpuTensor, stride: number, batch: AttentionBatch, dims: AttentionDims): void {
    const { numLayers: L, numKvHeads: H } = dims;
    const fields = this.#views.i32(cpu(batch.seqs), batch.numSeqs * SEQ_FIELDS);
    const stepFlags = this.#views.u8(flags);
    const ringFlags = this.#views.u8(cpu(batch.tables.ringFlags));
    const maxWindow = batch.tables.maxWindow;
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS;
      const row0 = fields[f + SEQ_ROW_START], numRows = fields[f + SEQ_NUM_ROWS], startPos = fields[f + SEQ_START_POS];
      const W = fields[f + SEQ_WINDOW], slot = fields[f + SEQ_SLOT];
      for (let lh = 0; lh < L * H; lh++) {
        const ring = (slot * L * H + lh) * maxWindow;
        // NOTE: a step longer than W wrote its first tokens to global slots: only the last W own ring offsets
        for (let t = Math.max(0, numRows - W); t < numRows; t++) ringFlags[ring + ((startPos + t) % W)] = stepFlags[lh * stride + row0 + t];
      }
    }
  }

  updatePageBounds(pool: CpuKvPool, pages: CpuTensor, first: number, count: number): void {
    const d = pool.headDim;
    if (!pool.boundsPtr) pool.boundsPtr = this.kv.kernels.alloc(pool.numPages * 2 * d * 4);
    const bounds = new Float32Array(this.kv.kernels.buffer(), pool.boundsPtr, pool.numPages * 2 * d);
    const keys = createKvReader(this.kv.kernels.buffer(), pool.kPtr, pool.numPages * PAGE_SIZE * d, pool.kvDType);
    const list = this.#views.i32(pages, 2 * count, 2 * first);
    for (let i = 0; i < count; i++) {
      const page = list[2 * i], numKeys = list[2 * i + 1];
      const min = page * 2 * d, max = min + d;
      for (let c = 0; c < d; c++) {
        let lo = Infinity, hi = -Infinity;
        for (let o = 0; o < numKeys; o++) {
          const k = keys((page * PAGE_SIZE + o) * d + c);
          if (k < lo) lo = k;
          if (k > hi) hi = k;
        }
        bounds[min + c] = lo;
        bounds[max + c] = hi;
      }
    }
  }

  /**
   * Quest (Tang et al. 2024): the upper bound of q·k over a page is
   * sum_i max(q_i min_i, q_i max_i), max over the KV head's query heads; the
   * best full pages within the budget are read in page order, then the
   * partial last page (always read). Within budget, every page is read.
   */
  questSelect(q: CpuTensor, pool: CpuKvPool, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const selection = batch.selection;
    if (!selection) return;
    const { numLayers: L, numHeads, numKvHeads: H, headDim: d } = dims;
    const group = numHeads / H;
    const fields = this.#views.i32(cpu(batch.seqs), batch.numSeqs * SEQ_FIELDS);
    const numGlobalAll = this.#views.i32(cpu(batch.numGlobal));
    const tables = this.#views.i32(cpu(batch.tables.blockTables));
    const chosen = this.#views.i32(cpu(selection.pages));
    const numTokens = this.#views.i32(cpu(selection.numTokens));
    const queries = this.#views.f32(q);
    const bounds = pool.boundsPtr ? new Float32Array(this.kv.kernels.buffer(), pool.boundsPtr, pool.numPages * 2 * d) : null;
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS;
      const budget = fields[f + SEQ_QUEST_BUDGET];
      if (budget <= 0 || fields[f + SEQ_NUM_ROWS] !== 1) continue;
      const slot = fields[f + SEQ_SLOT], W = fields[f + SEQ_WINDOW], row = fields[f + SEQ_ROW_START];
      for (let g = 0; g < H; g++) {
        const numGlobal = numGlobalAll[(s * L + layer) * H + g];
        const globalPages = (((slot * L + layer) * H + g) * batch.tables.rowStride) + W / PAGE_SIZE;
        const out = (s * H + g) * selection.stride;
        const numFull = Math.floor(numGlobal / PAGE_SIZE);
        const partial = numGlobal - numFull * PAGE_SIZE;
        const maxFull = Math.floor(Math.max(0, budget - partial) / PAGE_SIZE);
        let numOut = 0;
        if (numFull <= maxFull) {
          for (let i = 0; i < numFull; i++) chosen[out + numOut++] = tables[globalPages + i];
        } else {
          if (!bounds) throw new Error("questSelect: no page bounds were ever computed");
          const scores = new Float64Array(numFull);
          const qBase = (row * numHeads + g * group) * d;
          for (let i = 0; i < numFull; i++) {
            const page = tables[globalPages + i];
            let best = -Infinity;
            for (let gh = 0; gh < group; gh++) {
              let sum = 0;
              for (let c = 0; c < d; c++) {
                const qc = queries[qBase + gh * d + c];
                sum += Math.max(qc * bounds[page * 2 * d + c], qc * bounds[page * 2 * d + d + c]);
              }
              if (sum > best) best = sum;
            }
            scores[i] = best;
          }
          const order = Array.from({ length: numFull }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
          for (const i of order.slice(0, maxFull).sort((a, b) => a - b)) chosen[out + numOut++] = tables[globalPages + i];
        }
        if (partial > 0) chosen[out + numOut++] = tables[globalPages + numFull];
        numTokens[s * H + g] = Math.min(numFull, maxFull) * PAGE_SIZE + partial;
      }
    }
  }

  storeObservations(obs: CpuTensor, q: CpuTensor, layer: number, batch: AttentionBatch, dims: AttentionDims): void {
    const [, numLayers, window, width] = obs.shape as [number, number, number, number];
    const fields = this.#views.i32(cpu(batch.seqs), batch.numSeqs * SEQ_FIELDS);
    const rows = this.#views.f32(q);
    const out = this.#views.f32(obs);
    if (width !== dims.numHeads * dims.headDim || numLayers !== dims.numLayers) throw new Error(`storeObservations: ${obs.label} has shape [${obs.shape}]`);
    for (let s = 0; s < batch.numSeqs; s++) {
      const f = s * SEQ_FIELDS;
      if (fields[f + SEQ_OBSERVE] === 0) continue;
      const row0 = fields[f + SEQ_ROW_START], numRows = fields[f + SEQ_NUM_ROWS], startPos = fields[f + SEQ_START_POS];
      const slot = fields[f + SEQ_SLOT];
      for (let t = Math.max(0, numRows - window); t < numRows; t++) {
        const at = ((slot * numLayers + layer) * window + ((startPos + t) % window)) * width;
        out.set(rows.subarray((row0 + t) * width, (row0 + t + 1) * width), at);
      }
    }
  }

  /**
   * SnapKV: for each observation query of the head's group, the softmax over
   * every key the head holds (global and ring); each global key's score is
   * the weight summed over the observation queries, max over the group.
   */
  snapKvScores(out: CpuTensor, requests: CpuTensor, numRequests: number, obs: CpuTensor, pool: CpuKvPool, tables: KvTables, dims: AttentionDims): void {
    const { numLayers: L, numHeads, numKvHeads: H, headDim: d } = dims;
    const group = numHeads / H;
    const [, , window, width] = obs.shape as [number, number, number, number];
    const req = this.#views.i32(requests, numRequests * SNAP_FIELDS);
    const result = this.#views.f32(out);
    const queries = this.#views.f32(obs);
    const table = this.#views.i32(cpu(tables.blockTables));
    const keys = createKvReader(this.kv.kernels.buffer(), pool.kPtr, pool.numPages * PAGE_SIZE * d, pool.kvDType);
    const scale = 1 / Math.sqrt(d);
    for (let i = 0; i < numRequests; i++) {
      const r = i * SNAP_FIELDS;
      const slot = req[r + SNAP_SLOT], layer = req[r + SNAP_LAYER], g = req[r + SNAP_HEAD], W = req[r + SNAP_WINDOW];
      const numGlobal = req[r + SNAP_NUM_GLOBAL], numRing = req[r + SNAP_NUM_RING], numObs = req[r + SNAP_NUM_OBS], offset = req[r + SNAP_OFFSET];
      const row = ((slot * L + layer) * H + g) * tables.rowStride;
      const slotOf = (n: number) => (n < numGlobal ? table[row + W / PAGE_SIZE + (n >> 4)] * PAGE_SIZE + (n & 15) : table[row + ((n - numGlobal) >> 4)] * PAGE_SIZE + ((n - numGlobal) & 15));
      const numKeys = numGlobal + numRing;
      const logits = new Float64Array(numKeys);
      const best = new Float64Array(numGlobal);
      for (let gh = 0; gh < group; gh++) {
        const mass = new Float64Array(numGlobal);
        for (let o = 0; o < numObs; o++) {
          const qBase = ((slot * L + layer) * window + o) * width + (g * group + gh) * d;
          let max = -Infinity;
          for (let n = 0; n < numKeys; n++) {
            const kBase = slotOf(n) * d;
            let dot = 0;
            for (let c = 0; c < d; c++) dot += queries[qBase + c] * keys(kBase + c);
            logits[n] = dot * scale;
            if (logits[n] > max) max = logits[n];
          }
          let sum = 0;
          for (let n = 0; n < numKeys; n++) sum += logits[n] = Math.exp(logits[n] - max);
          for (let n = 0; n < numGlobal; n++) mass[n] += logits[n] / sum;
        }
        for (let n = 0; n < numGlobal; n++) if (mass[n] > best[n]) best[n] = mass[n];
      }
      result.set(best, offset);
    }
  }
}
