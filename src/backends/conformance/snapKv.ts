/**
 * @module backends/conformance/snapKv
 *
 * SnapKV on the device: storeObservations keeps, for each sequence that
 * observes, the last min(T, O) query rows of the step at offset pos mod O of
 * its slot and layer (exact copies; other slots, layers and offsets
 * untouched); snapKvScores gives each global token of a requested head the
 * softmax weight the observation queries put on it, over every key the head
 * holds (global and ring), summed over the queries and maxed over the query
 * heads of the group, against an independent f64 computation from the
 * host's keys at page precision (1e-6 relative; measured ~1e-8, the CPU
 * computes in f64 too).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AttentionDims, Backend, KvTables } from "../backend.js";
import {
  ringPosition, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_OBSERVE, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW, SNAP_FIELDS, SNAP_HEAD, SNAP_LAYER, SNAP_NUM_GLOBAL,
  SNAP_NUM_OBS, SNAP_NUM_RING, SNAP_OFFSET, SNAP_SLOT, SNAP_WINDOW,
} from "../stepLayout.js";
import { destroyAll, f32Tensor, filledF32, i32Tensor, readF32, tensorFrom, type ConformanceContext } from "./context.js";
import { buildPagedFixture, type FixtureSeq } from "./pagedFixture.js";
import { assertClose, assertSameNumbers, roundToKv, TestRandom } from "./testData.js";

const SNAP_TOLERANCE = 1e-6;
const SENTINEL = -9.25;

export function describeSnapKv(ctx: ConformanceContext): void {
  describe("SnapKV: storeObservations and snapKvScores", () => {
    test("storeObservations: the last min(T, O) rows at pos mod O of the sequence's slot and layer, only for sequences that observe", async () => {
      const b = ctx.backend;
      const random = new TestRandom(600);
      const [numSlots, L, O, Hq, d] = [4, 2, 4, 2, 8];
      const dims: AttentionDims = { numLayers: L, numHeads: Hq, numKvHeads: 1, headDim: d };
      const width = Hq * d;
      // [slot, startPos, rows, observe]
      const seqs = [[2, 5, 7, 4], [0, 6, 2, 4], [1, 0, 3, 0], [3, 41, 1, 4]] as const;
      const rowStart = [4, 0, 11, 2]; // rows in the order: seq 1, seq 3, seq 0 (4..10), seq 2
      const numRows = 14;
      const fields = new Int32Array(seqs.length * SEQ_FIELDS);
      seqs.forEach(([slot, startPos, rows, observe], s) => {
        const f = s * SEQ_FIELDS;
        [fields[f + SEQ_ROW_START], fields[f + SEQ_NUM_ROWS], fields[f + SEQ_START_POS], fields[f + SEQ_WINDOW], fields[f + SEQ_SLOT], fields[f + SEQ_OBSERVE]] = [rowStart[s], rows, startPos, 16, slot, observe];
      });
      const q = random.floats(numRows * width);
      const obs = filledF32(b, [numSlots, L, O, width], SENTINEL, "observations");
      const tensors = [i32Tensor(b, [seqs.length, SEQ_FIELDS], fields, "sequence fields"), f32Tensor(b, [numRows, width], q, "q")];
      const batch = { seqs: tensors[0], numSeqs: seqs.length, numGlobal: i32Tensor(b, [seqs.length, L, 1], new Int32Array(seqs.length * L), "global counts"), tables: dummyTables(b, numSlots, L), selection: null };
      const layer = 1;
      b.storeObservations(obs, tensors[1], layer, batch, dims);
      const want = new Float32Array(numSlots * L * O * width).fill(SENTINEL);
      seqs.forEach(([slot, startPos, rows, observe], s) => {
        if (!observe) return;
        for (let t = Math.max(0, rows - O); t < rows; t++) want.set(q.subarray((rowStart[s] + t) * width, (rowStart[s] + t + 1) * width), ((slot * L + layer) * O + ((startPos + t) % O)) * width);
      });
      assertSameNumbers(await readF32(b, obs), want, "observations");
      destroyAll(b, [obs, ...tensors, batch.numGlobal, batch.tables.blockTables, batch.tables.ringFlags]);
    });

    test("snapKvScores: each global token's softmax mass over the observation queries (all keys, global and ring), max over the group", async () => {
      const b = ctx.backend;
      const random = new TestRandom(610);
      const seqs: FixtureSeq[] = [
        { slot: 2, window: 16, startPos: 120, numRows: 1, admitRates: [0.4, 0.1] },
        { slot: 0, window: 32, startPos: 20, numRows: 1, admitRates: [1, 1] }, // the ring partly filled: no global token yet
        { slot: 1, window: 16, startPos: 90, numRows: 1, admitRates: [0.7, 0.5] },
      ];
      const kvDType = "bf16";
      const f = buildPagedFixture(b, { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, kvDType, numSlots: 3, maxWindow: 32 }, seqs, 611);
      const { numLayers: L, numHeads: Hq, numKvHeads: H, headDim: d } = f.dims;
      const group = Hq / H, O = 5, width = Hq * d;
      const obsHost = random.floats(3 * L * O * width, 3);
      const obs = f32Tensor(b, [3, L, O, width], obsHost, "observations");
      // [sequence, layer, head, observation queries held]
      const heads = [[0, 1, 0, 5], [0, 1, 1, 3], [2, 0, 1, 5], [1, 1, 0, 2], [2, 1, 0, 4]] as const;
      const requests = new Int32Array(heads.length * SNAP_FIELDS);
      let offset = 3; // scores start after a gap, with gaps between heads: nothing else is written
      const offsets: number[] = [];
      heads.forEach(([s, layer, g, numObs], i) => {
        const seq = seqs[s], r = i * SNAP_FIELDS, numGlobal = f.history[s][layer][g].globalList.length;
        [requests[r + SNAP_SLOT], requests[r + SNAP_LAYER], requests[r + SNAP_HEAD], requests[r + SNAP_WINDOW]] = [seq.slot, layer, g, seq.window];
        [requests[r + SNAP_NUM_GLOBAL], requests[r + SNAP_NUM_RING], requests[r + SNAP_NUM_OBS], requests[r + SNAP_OFFSET]] = [numGlobal, Math.min(seq.startPos, seq.window), numObs, offset];
        offsets.push(offset);
        offset += numGlobal + 2;
      });
      const out = filledF32(b, [offset + 1], SENTINEL, "SnapKV scores");
      const req = i32Tensor(b, [heads.length + 1, SNAP_FIELDS], [...requests, ...new Array(SNAP_FIELDS).fill(0)], "requests"); // a spare request of zeros past the count
      b.snapKvScores(out, req, heads.length, obs, f.pool, f.tables, f.dims);
      const got = await readF32(b, out);

      const round = roundToKv(kvDType);
      const want = new Float64Array(offset + 1).fill(SENTINEL);
      heads.forEach(([s, layer, g, numObs], i) => {
        const seq = seqs[s], h = f.history[s][layer][g];
        const numRing = Math.min(seq.startPos, seq.window);
        const positions = [...h.globalList, ...Array.from({ length: numRing }, (_, o) => ringPosition(o, seq.startPos, seq.window))];
        for (let gh = 0; gh < group; gh++) {
          const mass = new Float64Array(h.globalList.length);
          for (let o = 0; o < numObs; o++) {
            const qAt = ((seq.slot * L + layer) * O + o) * width + (g * group + gh) * d;
            const logits = positions.map((p) => {
              let dot = 0;
              for (let c = 0; c < d; c++) dot += obsHost[qAt + c] * round(h.keys[p * d + c]);
              return dot / Math.sqrt(d);
            });
            const max = Math.max(...logits);
            const e = logits.map((x) => Math.exp(x - max));
            const sum = e.reduce((a, x) => a + x, 0);
            for (let n = 0; n < mass.length; n++) mass[n] += e[n] / sum;
          }
          mass.forEach((m, n) => (want[offsets[i] + n] = gh === 0 ? m : Math.max(want[offsets[i] + n], m)));
        }
      });
      const scored = (i: number) => want[i] !== SENTINEL;
      assertClose(got.filter((_, i) => scored(i)), want.filter((_, i) => scored(i)), SNAP_TOLERANCE, "snapKvScores");
      assert.ok(got.every((x, i) => scored(i) || x === SENTINEL), "snapKvScores wrote outside the requests' ranges");
      assert.ok(want.filter((x, i) => scored(i) && x > 0.05).length >= 5, "the case must give some tokens real mass");
      destroyAll(b, [...f.tensors, obs, out, req]);
    });
  });
}

/** Tables storeObservations does not read, but a batch carries. */
function dummyTables(b: Backend, numSlots: number, L: number): KvTables {
  return {
    blockTables: i32Tensor(b, [numSlots, L, 1, 1], new Int32Array(numSlots * L), "block tables"),
    ringFlags: tensorFrom(b, [numSlots, L, 1, 16], "u8", new Uint8Array(numSlots * L * 16), "ring flags"),
    numSlots, rowStride: 1, maxWindow: 16,
  };
}
