/**
 * @module backends/conformance/pagedFixture
 *
 * A step's KV state built through the Backend interface only, for the ops
 * that read the dual cache (pagedAttention, questSelect, snapKvScores):
 * sequences with a history of `startPos` tokens per layer and KV head
 * (random keys, values and admit flags, a different admission rate per head
 * so heads are ragged), laid out as DESIGN.md §4 describes:
 *
 * - the last min(P, W) positions in the head's ring, position p at offset
 *   p mod W, with their admit flags in KvTables.ringFlags;
 * - the admitted older positions in global pages, in shuffled order (page
 *   order must not matter), the last page partial;
 * - page ids scattered over the pool, page 0 holding no token (the page a
 *   kernel may read for a masked key); every slot first holds poison
 *   (|value| = 300, a quarter of the values infinite) written by writeKv, so
 *   a read of a slot the tables do not name shows; spare table entries name
 *   a page of poison; ring flags of offsets that hold no token are random;
 * - the step's own admit flags (as `admit` leaves them) in batch.admitted:
 *   a chunk longer than its window reads its older keys by them.
 *
 * The host keeps every key and value, so a test can compute what the device
 * must produce, here dense attention under DESIGN.md §3's rule.
 */
import type { AttentionBatch, AttentionDims, Backend, KvDType, KvPool, KvTables, Tensor } from "../backend.js";
import { PAGE_SIZE, SEQ_ADMISSION, SEQ_ADMISSION_ARG, SEQ_ADMISSION_SEED, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_OBSERVE, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import { f32Tensor, i32Tensor, tensorFrom } from "./context.js";
import { roundToKv, TestRandom } from "./testData.js";

export const POISON = 300;

export interface FixtureSeq {
  /** Row of the device tables. */
  readonly slot: number;
  readonly window: number;
  /** Tokens cached before the step (P). */
  readonly startPos: number;
  /** Tokens of the step (more than the window: the chunk's older keys follow their flags, batch.admitted). */
  readonly numRows: number;
  /** Per KV head: the share of history tokens its gate admitted (ragged heads). */
  readonly admitRates: readonly number[];
  readonly questBudget?: number;
  readonly observe?: number;
  /** SEQ_ADMISSION, SEQ_ADMISSION_ARG, SEQ_ADMISSION_SEED (default: full, 0, 0). */
  readonly admission?: readonly [number, number, number];
}

export interface FixtureShape extends AttentionDims {
  readonly kvDType: KvDType;
  readonly numSlots: number;
  readonly maxWindow: number;
}

/** One (sequence, layer, KV head)'s history on the host. */
export interface HeadHistory {
  /** f32 [(P + T) * d]: keys of positions 0 .. P + T - 1 (the last T are the step's fresh keys). */
  readonly keys: Float32Array;
  readonly values: Float32Array;
  /** Per position. */
  readonly admitted: Uint8Array;
  /** Positions in the global pages, in page order (token t on page t >> 4). */
  readonly globalList: readonly number[];
  readonly globalPages: readonly number[];
  /** W / 16 ring page ids (those holding no token name the poison page). */
  readonly ringPages: readonly number[];
}

export interface PagedFixture {
  readonly shape: FixtureShape;
  readonly dims: AttentionDims;
  readonly seqs: readonly FixtureSeq[];
  readonly pool: KvPool;
  readonly tables: KvTables;
  readonly batch: AttentionBatch;
  /** First row of each sequence in q, k, v (the order of rows is shuffled). */
  readonly rowStart: readonly number[];
  readonly numRows: number;
  /** f32 [numRows, Hq * d] queries; f32 [numRows, Hkv * d] fresh keys and values. */
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly qHost: Float32Array;
  /** history[s][layer][g] */
  readonly history: readonly (readonly (readonly HeadHistory[])[])[];
  readonly poisonPage: number;
  /** Every tensor made, for destroying. */
  readonly tensors: readonly Tensor[];
}

/** Builds the state on `b` (writes queued). */
export function buildPagedFixture(b: Backend, shape: FixtureShape, seqs: readonly FixtureSeq[], seed: number, qGain = 2): PagedFixture {
  const random = new TestRandom(seed);
  const { numLayers: L, numHeads: Hq, numKvHeads: H, headDim: d, kvDType, numSlots, maxWindow } = shape;
  const dims: AttentionDims = { numLayers: L, numHeads: Hq, numKvHeads: H, headDim: d };

  // ---- host histories and page lists
  const pageOwners: { s: number; l: number; g: number; kind: "ring" | "global"; index: number }[] = [];
  const partial = seqs.map((seq, s) =>
    Array.from({ length: L }, (_, l) =>
      Array.from({ length: H }, (_, g) => {
        const N = seq.startPos + seq.numRows;
        const admitted = Uint8Array.from({ length: N }, () => (random.next() < seq.admitRates[g] ? 1 : 0));
        const ringStart = Math.max(0, seq.startPos - seq.window);
        const globalList = random.permutation(ringStart).filter((p) => admitted[p]);
        const numRingPages = Math.ceil((seq.startPos - ringStart) / PAGE_SIZE);
        for (let i = 0; i < numRingPages; i++) pageOwners.push({ s, l, g, kind: "ring", index: i });
        for (let i = 0; i < Math.ceil(globalList.length / PAGE_SIZE); i++) pageOwners.push({ s, l, g, kind: "global", index: i });
        return { keys: random.floats(N * d), values: random.floats(N * d), admitted, globalList, numRingPages };
      }),
    ),
  );
  const numPages = pageOwners.length + 2 + random.int(4);
  const ids = random.permutation(numPages);
  // NOTE: the poison page is page 0, where kernels point the loads of keys they mask (a tile's unused slots)
  const zeroAt = ids.indexOf(0);
  [ids[zeroAt], ids[pageOwners.length]] = [ids[pageOwners.length], ids[zeroAt]];
  const poisonPage = ids[pageOwners.length];
  const ringPages = partial.map((ls, s) => ls.map((gs) => gs.map(() => new Array<number>(seqs[s].window / PAGE_SIZE).fill(poisonPage))));
  const globalPages = partial.map((ls) => ls.map((gs) => gs.map((h) => new Array<number>(Math.ceil(h.globalList.length / PAGE_SIZE)))));
  pageOwners.forEach((o, i) => ((o.kind === "ring" ? ringPages : globalPages)[o.s][o.l][o.g][o.index] = ids[i]));
  const history: HeadHistory[][][] = partial.map((ls, s) =>
    ls.map((gs, l) => gs.map((h, g) => ({ keys: h.keys, values: h.values, admitted: h.admitted, globalList: h.globalList, globalPages: globalPages[s][l][g], ringPages: ringPages[s][l][g] }))),
  );

  // ---- the pool: poison everywhere, then each sequence's history through writeKv
  const pool = b.createKvPool(numPages, d, kvDType);
  const tensors: Tensor[] = [];
  const t = <T extends Tensor>(x: T) => (tensors.push(x), x);
  const numSlotsInPool = numPages * PAGE_SIZE;
  const poison = Float32Array.from({ length: numSlotsInPool * d }, () => POISON * (random.next() < 0.5 ? -1 : 1));
  const poisonK = t(f32Tensor(b, [numSlotsInPool, d], poison, "poison keys"));
  // NOTE: a quarter of the values' poison is infinite (as f16 pages hold where a model's values overflowed): a hidden
  // key's value must never meet its zero weight (0 x inf = NaN)
  const poisonV = t(f32Tensor(b, [numSlotsInPool, d], poison.map((x, i) => (i % 4 === 1 ? -x * Infinity : -x)), "poison values"));
  b.writeKv(pool, poisonK, poisonV, t(i32Tensor(b, [numSlotsInPool], Array.from({ length: numSlotsInPool }, (_, i) => i), "all slots")), 0, numSlotsInPool);
  seqs.forEach((seq, s) => {
    const P = seq.startPos;
    if (P === 0) return;
    // one slot mapping [L, H, P] per sequence, each layer at its offset
    const mapping = new Int32Array(L * H * P).fill(-1);
    for (let l = 0; l < L; l++) {
      for (let g = 0; g < H; g++) {
        const h = history[s][l][g];
        const ringStart = Math.max(0, P - seq.window);
        for (let p = ringStart; p < P; p++) mapping[(l * H + g) * P + p] = slotOf(h.ringPages, p % seq.window);
        h.globalList.forEach((p, i) => (mapping[(l * H + g) * P + p] = slotOf(h.globalPages, i)));
      }
    }
    const map = t(i32Tensor(b, [L, H, P], mapping, `slot mapping of sequence ${s}`));
    for (let l = 0; l < L; l++) {
      const rowsOf = (pick: (h: HeadHistory) => Float32Array) => {
        const out = new Float32Array(P * H * d);
        for (let p = 0; p < P; p++) for (let g = 0; g < H; g++) out.set(pick(history[s][l][g]).subarray(p * d, (p + 1) * d), (p * H + g) * d);
        return out;
      };
      b.writeKv(pool, t(f32Tensor(b, [P, H * d], rowsOf((h) => h.keys), "history keys")), t(f32Tensor(b, [P, H * d], rowsOf((h) => h.values), "history values")), map, l * H * P, P);
    }
  });

  // ---- device tables
  const rowStride = maxWindow / PAGE_SIZE + Math.max(1, ...history.flat(2).map((h) => h.globalPages.length)) + random.int(3);
  const blockTables = new Int32Array(numSlots * L * H * rowStride).fill(poisonPage);
  const ringFlags = Uint8Array.from({ length: numSlots * L * H * maxWindow }, () => random.int(2));
  const numGlobal = new Int32Array(seqs.length * L * H);
  seqs.forEach((seq, s) => {
    for (let l = 0; l < L; l++) {
      for (let g = 0; g < H; g++) {
        const h = history[s][l][g];
        const head = (seq.slot * L + l) * H + g;
        blockTables.set(h.ringPages, head * rowStride);
        blockTables.set(h.globalPages, head * rowStride + seq.window / PAGE_SIZE);
        for (let p = Math.max(0, seq.startPos - seq.window); p < seq.startPos; p++) ringFlags[head * maxWindow + (p % seq.window)] = h.admitted[p];
        numGlobal[(s * L + l) * H + g] = h.globalList.length;
      }
    }
  });
  const tables: KvTables = {
    blockTables: t(i32Tensor(b, [numSlots, L, H, rowStride], blockTables, "block tables")),
    ringFlags: t(tensorFrom(b, [numSlots, L, H, maxWindow], "u8", ringFlags, "ring flags")),
    numSlots, rowStride, maxWindow,
  };

  // ---- the step: rows of the sequences in shuffled order
  const order = random.permutation(seqs.length);
  const rowStart = new Array<number>(seqs.length);
  let numRows = 0;
  for (const s of order) {
    rowStart[s] = numRows;
    numRows += seqs[s].numRows;
  }
  const fields = new Int32Array((seqs.length + 1) * SEQ_FIELDS);
  seqs.forEach((seq, s) => {
    const f = s * SEQ_FIELDS;
    fields[f + SEQ_ROW_START] = rowStart[s];
    fields[f + SEQ_NUM_ROWS] = seq.numRows;
    fields[f + SEQ_START_POS] = seq.startPos;
    fields[f + SEQ_WINDOW] = seq.window;
    fields[f + SEQ_SLOT] = seq.slot;
    [fields[f + SEQ_ADMISSION], fields[f + SEQ_ADMISSION_ARG], fields[f + SEQ_ADMISSION_SEED]] = seq.admission ?? [0, 0, 0];
    fields[f + SEQ_QUEST_BUDGET] = seq.questBudget ?? 0;
    fields[f + SEQ_OBSERVE] = seq.observe ?? 0;
  });
  const qHost = random.floats(numRows * Hq * d, qGain);
  const fresh = (pick: (h: HeadHistory) => Float32Array) => {
    const out = new Float32Array(numRows * H * d);
    seqs.forEach((seq, s) => {
      for (let r = 0; r < seq.numRows; r++) {
        for (let g = 0; g < H; g++) out.set(pick(history[s][0][g]).subarray((seq.startPos + r) * d, (seq.startPos + r + 1) * d), ((rowStart[s] + r) * H + g) * d);
      }
    });
    return out;
  };
  // NOTE: a step's k and v hold one layer at a time: every layer's fresh keys and values are layer 0's
  history.forEach((ls, s) => {
    const at = seqs[s].startPos * d;
    for (let l = 1; l < L; l++) {
      ls[l].forEach((h, g) => {
        h.keys.set(ls[0][g].keys.subarray(at), at);
        h.values.set(ls[0][g].values.subarray(at), at);
      });
    }
  });
  // the step's flags as admit writes them: u8 [L, H, numRows]
  const stepFlags = new Uint8Array(L * H * numRows);
  seqs.forEach((seq, s) => {
    for (let l = 0; l < L; l++) for (let g = 0; g < H; g++) for (let r = 0; r < seq.numRows; r++) stepFlags[(l * H + g) * numRows + rowStart[s] + r] = history[s][l][g].admitted[seq.startPos + r];
  });
  const batch: AttentionBatch = {
    // one spare record of garbage after the batch: a backend must stop at numSeqs
    seqs: t(i32Tensor(b, [seqs.length + 1, SEQ_FIELDS], fields.map((x, i) => (i >= seqs.length * SEQ_FIELDS ? -7 : x)), "sequence fields")),
    numSeqs: seqs.length,
    numGlobal: t(i32Tensor(b, [seqs.length, L, H], numGlobal, "global token counts")),
    tables,
    selection: null,
    admitted: { flags: t(tensorFrom(b, [L, H, numRows], "u8", stepFlags, "step admit flags")), numRows },
  };
  return {
    shape, dims, seqs, pool, tables, batch, rowStart, numRows, qHost, history, poisonPage, tensors,
    q: t(f32Tensor(b, [numRows, Hq * d], qHost, "q")),
    k: t(f32Tensor(b, [numRows, H * d], fresh((h) => h.keys), "k")),
    v: t(f32Tensor(b, [numRows, H * d], fresh((h) => h.values), "v")),
  };
}

/** The slot of token t of a list of pages. */
export function slotOf(pages: readonly number[], t: number): number {
  return pages[t >> 4] * PAGE_SIZE + (t & 15);
}

/**
 * Dense attention of one layer under DESIGN.md §3's rule, f64: query r of
 * sequence s (position P + r) sees position j iff j <= P + r and
 * (P + r - j < W or j admitted), with cached keys at page precision and the
 * step's own keys exact. `readsGlobal(s, g, t)` narrows which global tokens a
 * row reads (Quest); default all.
 */
export function denseAttention(
  f: PagedFixture, layer: number, readsGlobal: (s: number, g: number, t: number, r: number) => boolean = () => true,
  admittedOverride?: (s: number, g: number, p: number) => boolean, windowOverride?: (s: number) => number,
): Float64Array {
  const { numHeads: Hq, numKvHeads: H, headDim: d } = f.dims;
  const group = Hq / H;
  const round = roundToKv(f.shape.kvDType);
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(f.numRows * Hq * d);
  f.seqs.forEach((seq, s) => {
    const P = seq.startPos, W = windowOverride ? windowOverride(s) : seq.window;
    for (let g = 0; g < H; g++) {
      const h = f.history[s][layer][g];
      const globalIndex = new Map(h.globalList.map((p, t) => [p, t]));
      for (let r = 0; r < seq.numRows; r++) {
        const i = P + r;
        const visible: number[] = [];
        for (let j = 0; j <= i; j++) {
          const admitted = admittedOverride ? admittedOverride(s, g, j) : h.admitted[j] === 1;
          if (!(i - j < W || admitted)) continue;
          const t = globalIndex.get(j);
          if (t !== undefined && !readsGlobal(s, g, t, r)) continue;
          visible.push(j);
        }
        const at = (a: Float32Array, j: number, c: number) => (j < P ? round(a[j * d + c]) : a[j * d + c]);
        for (let hq = g * group; hq < (g + 1) * group; hq++) {
          const qBase = ((f.rowStart[s] + r) * Hq + hq) * d;
          const scores = visible.map((j) => {
            let dot = 0;
            for (let c = 0; c < d; c++) dot += f.qHost[qBase + c] * at(h.keys, j, c);
            return dot * scale;
          });
          const max = Math.max(...scores);
          const w = scores.map((x) => Math.exp(x - max));
          const sum = w.reduce((a, x) => a + x, 0);
          for (let c = 0; c < d; c++) {
            let acc = 0;
            visible.forEach((j, n) => (acc += w[n] * at(h.values, j, c)));
            out[qBase + c] = acc / sum;
          }
        }
      }
    }
  });
  return out;
}
