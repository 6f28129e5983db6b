/**
 * @module backends/conformance/admission
 *
 * The write gate and admission: gateScores against the f64 gate of
 * gate/gateMath.ts (rows [row0, row0 + n) of one layer into
 * scores[offset + h * stride + r], nothing else written), and admit for
 * every admission kind of stepLayout.ts in one batch, each sequence by its
 * own rule, with the flags written to the step's flags tensor only, for
 * both layers; then one writeRingFlags puts the flags of every layer of each
 * sequence's last min(T, W) tokens at
 * their ring offset pos mod W in KvTables.ringFlags (every other ring flag,
 * the state of earlier steps, untouched).
 *
 * Tolerance of gate scores: 1e-6 relative (measured 1.2e-7: f32
 * matmuls, an erf and an exp approximation against f64). Admission is exact:
 * tau is compared in f32, as torch compares an f32 tensor with a Python
 * float, so a score equal to f32(tau) is not admitted.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AttentionBatch, Backend } from "../backend.js";
import { scoreGateBatch } from "../../gate/gateMath.js";
import {
  ADMIT_FULL, ADMIT_GATE, ADMIT_LOCAL, ADMIT_RANDOM, ADMIT_SINKS, admissionHash, bitsOfF32, randomAdmissionThreshold, SEQ_ADMISSION, SEQ_ADMISSION_ARG,
  SEQ_ADMISSION_SEED, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW,
} from "../stepLayout.js";
import { f32Tensor, filledF32, i32Tensor, readF32, tensorFrom, type ConformanceContext } from "./context.js";
import { randomGate } from "./gateData.js";
import { assertClose, nextF32Down, nextF32Up, TestRandom } from "./testData.js";

const GATE_TOLERANCE = 1e-6;
const SENTINEL = -3.5;
/** A flag value admit never writes. */
const UNTOUCHED = 7;

export function describeAdmission(ctx: ConformanceContext): void {
  describe("write gate and admission", () => {
    test("gateScores: rows [row0, row0 + n) of a layer at offset + h * stride + r, against the f64 gate", async () => {
      const b = ctx.backend;
      const random = new TestRandom(400);
      const [L, H, d, E, T] = [2, 2, 16, 40, 11];
      const gate = randomGate(random, L, H, d, E);
      const handle = b.uploadGate(gate);
      const kPre = random.floats(T * H * d, 3), kPost = random.floats(T * H * d);
      const scores = filledF32(b, [L, H, T], SENTINEL, "gate scores");
      const pre = f32Tensor(b, [T, H * d], kPre, "k before RoPE"), post = f32Tensor(b, [T, H * d], kPost, "k after RoPE");
      // two runs as the engine makes them (sequences of different gates): layer 1 rows 3..8, layer 0 rows 0..2
      const runs = [[1, 3, 6], [0, 0, 3]] as const;
      for (const [layer, row0, n] of runs) b.gateScores(scores, layer * H * T, T, handle, layer, pre, post, row0, n);
      const got = await readF32(b, scores);
      const want = new Float64Array(L * H * T).fill(SENTINEL);
      for (const [layer, row0, n] of runs) {
        const rows = scoreGateBatch(gate, layer, kPre.subarray(row0 * H * d), kPost.subarray(row0 * H * d), n);
        for (let h = 0; h < H; h++) for (let r = 0; r < n; r++) want[layer * H * T + h * T + row0 + r] = rows[h * n + r];
      }
      const written = (i: number) => want[i] !== SENTINEL;
      assertClose(got.filter((_, i) => written(i)), want.filter((_, i) => written(i)), GATE_TOLERANCE, "gateScores");
      assert.ok(got.every((x, i) => written(i) || x === SENTINEL), "gateScores wrote outside its rows");
      const spread = want.filter((g, i) => written(i) && g > 0.05 && g < 0.95).length;
      assert.ok(spread >= 8, `only ${spread} scores away from 0 and 1: the case checks little`);
    });

    test("admit: full, local, sinks, random (rates below and above 1/2) and gate (tau per sequence, in f32) in one batch; then ring flags at pos mod W", async () => {
      const b = ctx.backend;
      const random = new TestRandom(401);
      const [L, H, layer, maxWindow, numSlots] = [2, 2, 1, 32, 8];
      const tau = [0.1, 0.25];
      // [kind, arg, seed, slot, window, startPos, rows]
      const seqs: (readonly [number, number, number, number, number, number, number])[] = [
        [ADMIT_FULL, 0, 0, 3, 16, 10, 4],
        [ADMIT_LOCAL, 0, 0, 0, 32, 0, 5],
        [ADMIT_SINKS, 4, 0, 2, 16, 2, 6],
        [ADMIT_RANDOM, randomAdmissionThreshold(0.7) | 0, 12345, 1, 16, 1000, 16], // a threshold >= 2^31: compared as u32
        [ADMIT_RANDOM, randomAdmissionThreshold(0.2) | 0, 777, 6, 32, 37, 9],
        [ADMIT_GATE, bitsOfF32(tau[0]), 0, 4, 32, 40, 8],
        [ADMIT_GATE, bitsOfF32(tau[1]), 0, 5, 16, 23, 1],
        [ADMIT_RANDOM, randomAdmissionThreshold(0.5) | 0, 99, 7, 16, 5, 37], // longer than W: only its last 16 take ring offsets
      ];
      const order = random.permutation(seqs.length);
      const rowStart: number[] = [];
      let T = 0;
      for (const s of order) {
        rowStart[s] = T;
        T += seqs[s][6];
      }
      const fields = new Int32Array(seqs.length * SEQ_FIELDS);
      seqs.forEach(([kind, arg, seed, slot, W, startPos, rows], s) => {
        const f = s * SEQ_FIELDS;
        [fields[f + SEQ_ROW_START], fields[f + SEQ_NUM_ROWS], fields[f + SEQ_START_POS], fields[f + SEQ_WINDOW], fields[f + SEQ_SLOT]] = [rowStart[s], rows, startPos, W, slot];
        [fields[f + SEQ_ADMISSION], fields[f + SEQ_ADMISSION_ARG], fields[f + SEQ_ADMISSION_SEED]] = [kind, arg, seed];
      });
      // scores laid out like the flags [L, H, T]; the gate sequences get f32(tau) itself and its neighbours
      const scores = Float32Array.from({ length: L * H * T }, () => random.next());
      seqs.forEach(([kind], s) => {
        if (kind !== ADMIT_GATE) return;
        const t = Math.fround(tau[s - 5]);
        const edge = [t, nextF32Up(t), nextF32Down(t), 1e-3, 1, tau[s - 5] + 1e-9];
        for (let h = 0; h < H; h++) edge.forEach((x, i) => i < seqs[s][6] && (scores[layer * H * T + h * T + rowStart[s] + ((i + h) % seqs[s][6])] = x));
      });
      const flags = tensorFrom(b, [L, H, T], "u8", new Uint8Array(L * H * T).fill(UNTOUCHED), "flags");
      const ringFlags = tensorFrom(b, [numSlots, L, H, maxWindow], "u8", new Uint8Array(numSlots * L * H * maxWindow).fill(UNTOUCHED), "ring flags");
      const batch = admissionBatch(b, fields, seqs.length, ringFlags, numSlots, maxWindow, L, H);
      // every layer's admission, as a step does, then one writeRingFlags for all of them after the last
      const dims = { numLayers: L, numHeads: 2 * H, numKvHeads: H, headDim: 16 };
      const scoreTensor = f32Tensor(b, [L, H, T], scores, "scores");
      for (let l = 0; l < L; l++) b.admit(flags, scoreTensor, l * H * T, T, l, batch, dims);
      const [gotFlags, ringAfterAdmit] = await b.read([{ tensor: flags }, { tensor: ringFlags }]);
      // every layer in one call (a step without gate scores): the same flags
      const together = tensorFrom(b, [L, H, T], "u8", new Uint8Array(L * H * T).fill(UNTOUCHED), "flags, one call");
      b.admit(together, scoreTensor, 0, T, 0, batch, dims, L);
      const [gotTogether] = await b.read([{ tensor: together }]);
      assert.deepEqual(Array.from(gotTogether), Array.from(gotFlags), "every layer's admission in one call");
      // layers [1, L) from layer 1's offset: layer 0's flags untouched
      const tail = tensorFrom(b, [L, H, T], "u8", new Uint8Array(L * H * T).fill(UNTOUCHED), "flags, layers after the first");
      b.admit(tail, scoreTensor, H * T, T, 1, batch, dims, L - 1);
      const [gotTail] = await b.read([{ tensor: tail }]);
      assert.deepEqual(Array.from(gotTail), [...new Array(H * T).fill(UNTOUCHED), ...Array.from(gotFlags).slice(H * T)], "layers after the first in one call");
      assert.ok(Array.from(ringAfterAdmit).every((x) => x === UNTOUCHED), "admit wrote ring flags (the layer's attention still reads the old ones)");
      b.writeRingFlags(flags, T, batch, dims);
      const [gotRing] = await b.read([{ tensor: ringFlags }]);

      const wantFlags = new Uint8Array(L * H * T).fill(UNTOUCHED);
      const wantRing = new Uint8Array(numSlots * L * H * maxWindow).fill(UNTOUCHED);
      seqs.forEach(([kind, arg, seed, slot, W, startPos, rows], s) => {
        for (let l = 0; l < L; l++) {
          for (let h = 0; h < H; h++) {
            for (let r = 0; r < rows; r++) {
              const pos = startPos + r, at = l * H * T + h * T + rowStart[s] + r;
              const admitted =
                kind === ADMIT_FULL ? true
                : kind === ADMIT_LOCAL ? false
                : kind === ADMIT_SINKS ? pos < arg
                : kind === ADMIT_RANDOM ? admissionHash(seed, l, h, pos) < arg >>> 0
                : Math.fround(scores[at]) > Math.fround(tau[s - 5]);
              wantFlags[at] = admitted ? 1 : 0;
              if (r >= rows - W) wantRing[((slot * L + l) * H + h) * maxWindow + (pos % W)] = admitted ? 1 : 0;
            }
          }
        }
      });
      assert.deepEqual(Array.from(gotFlags), Array.from(wantFlags), "flags");
      assert.deepEqual(Array.from(gotRing), Array.from(wantRing), "ring flags");
      // the case can fail: each kind decides differently, and f32(tau) itself is not admitted
      const gateAt = (s: number, h: number, i: number) => layer * H * T + h * T + rowStart[s] + ((i + h) % seqs[s][6]);
      assert.equal(gotFlags[gateAt(5, 0, 0)], 0, "a score equal to f32(0.1) is not admitted (in f64 it would exceed 0.1)");
      assert.equal(gotFlags[gateAt(5, 0, 1)], 1, "the next f32 above tau is admitted");
      const randomAdmitted = (s: number) => Array.from({ length: seqs[s][6] }, (_, r) => wantFlags[layer * H * T + rowStart[s] + r]).filter((x) => x === 1).length;
      assert.ok(randomAdmitted(3) > 8 && randomAdmitted(3) < 16 && randomAdmitted(4) < 5, "random admission rates look wrong");
    });
  });
}

/** A batch whose only state is the ring flags (admit reads nothing else of the tables). */
function admissionBatch(b: Backend, fields: Int32Array, numSeqs: number, ringFlags: AttentionBatch["tables"]["ringFlags"], numSlots: number, maxWindow: number, L: number, H: number): AttentionBatch {
  return {
    seqs: i32Tensor(b, [numSeqs, SEQ_FIELDS], fields, "sequence fields"),
    numSeqs,
    numGlobal: i32Tensor(b, [numSeqs, L, H], new Int32Array(numSeqs * L * H), "global counts"),
    tables: { blockTables: i32Tensor(b, [numSlots, L, H, maxWindow / 16], new Int32Array(numSlots * L * H * (maxWindow / 16)), "block tables"), ringFlags, numSlots, rowStride: maxWindow / 16, maxWindow },
    selection: null,
  };
}
