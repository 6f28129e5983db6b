/**
 * @module backends/conformance/attention
 *
 * pagedAttention over a whole step's batch (pagedFixture.ts builds it
 * through the interface) against dense attention under DESIGN.md §3's rule,
 * f64, with cached keys and values read at page precision: prefill chunks
 * and decode rows in one call, different windows and start positions (rings
 * partly filled, wrapped many times), ragged KV heads (one without any
 * global token), GQA, a layer other than 0, rows of the sequences in
 * shuffled order, and a decode row reading Quest's selection buffers.
 *
 * Tolerance 2e-6 relative for every page dtype (measured at most 1.9e-7:
 * an f32 online softmax against the f64 reference; both read the same
 * rounded page values, so 16-bit pages add no error of their own).
 * Each case also checks itself: the expected output under a wrong rule
 * (admit flags ignored, the largest window used for every sequence, every
 * global page read instead of Quest's) must be far from the device's, so a
 * backend making that mistake fails.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Backend, KvDType, SelectionBuffers } from "../backend.js";
import { ADMIT_RANDOM, PAGE_SIZE } from "../stepLayout.js";
import { destroyAll, filledF32, i32Tensor, readF32, type ConformanceContext } from "./context.js";
import { buildPagedFixture, denseAttention, type FixtureSeq, type FixtureShape, type PagedFixture } from "./pagedFixture.js";
import { assertClose, relativeError, TestRandom } from "./testData.js";

export const ATTENTION_TOLERANCE = 2e-6;
const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];

/** Prefill chunks and decode rows of different windows, start positions and ragged heads. */
const MIXED_BATCH: readonly FixtureSeq[] = [
  { slot: 5, window: 32, startPos: 150, numRows: 1, admitRates: [0.3, 0] }, //  decode, ring wrapped, head 1 without global tokens
  { slot: 0, window: 16, startPos: 5, numRows: 7, admitRates: [1, 1] }, //      a chunk after a partly filled ring
  { slot: 3, window: 64, startPos: 0, numRows: 20, admitRates: [0.5, 0.5] }, // a first chunk: nothing cached
  { slot: 2, window: 32, startPos: 70, numRows: 32, admitRates: [0.9, 0.1] }, // a whole-window chunk
  { slot: 1, window: 16, startPos: 33, numRows: 1, admitRates: [0.5, 0.6] }, // decode, W = 16
  { slot: 4, window: 16, startPos: 40, numRows: 40, admitRates: [1, 1] }, //   full attention: a chunk longer than its window
  { slot: 6, window: 16, startPos: 20, numRows: 45, admitRates: [0.4, 0.2], admission: [ADMIT_RANDOM, 0, 0] }, // gated: the chunk's older keys by their flags
];

export function describeAttention(ctx: ConformanceContext): void {
  describe("pagedAttention", () => {
    // NOTE: head dim 16 takes WebGPU's tiled kernel; webgpu/webgpuAttention.test.ts runs its decode kernel's head dims
    for (const kvDType of KV_DTYPES) {
      test(`${kvDType} pages: prefill chunks and decode rows of different windows and positions in one call, ragged heads`, async () => {
        const b = ctx.backend;
        const shape: FixtureShape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, kvDType, numSlots: 7, maxWindow: 64 };
        const f = buildPagedFixture(b, shape, MIXED_BATCH, 200 + KV_DTYPES.indexOf(kvDType));
        const got = await runAttention(b, f, 1);
        const want = denseAttention(f, 1);
        assertClose(got, want, ATTENTION_TOLERANCE, `pagedAttention ${kvDType}`);
        // the case can fail: wrong rules give answers far from the device's
        assert.ok(relativeError(got, denseAttention(f, 1, undefined, () => true)) > 1e-2, "ignoring the admit flags would pass");
        const chunkKeysAll = (s: number, g: number, p: number) => p >= f.seqs[s].startPos || f.history[s][1][g].admitted[p] === 1;
        assert.ok(relativeError(got, denseAttention(f, 1, undefined, chunkKeysAll)) > 1e-2, "every chunk key visible would pass");
        assert.ok(relativeError(got, denseAttention(f, 1, undefined, undefined, () => 64)) > 1e-2, "one window for all sequences would pass");
        assert.ok(relativeError(got, denseAttention(f, 0)) > 1e-2, "reading layer 0 would pass");
        destroyAll(b, f.tensors);
      });
    }

    test("GQA group 3, head dim 64, one KV head; GQA group 1, three KV heads", async () => {
      const b = ctx.backend;
      for (const [numHeads, numKvHeads, headDim, seed] of [[3, 1, 64, 210], [3, 3, 16, 211]] as const) {
        const seqs: FixtureSeq[] = [
          { slot: 1, window: 16, startPos: 40, numRows: 1, admitRates: [0.4, 0.2, 0.7] },
          { slot: 0, window: 32, startPos: 45, numRows: 16, admitRates: [0.6, 0.1, 0.3] },
        ];
        const shape: FixtureShape = { numLayers: 1, numHeads, numKvHeads, headDim, kvDType: "f32", numSlots: 2, maxWindow: 32 };
        const f = buildPagedFixture(b, shape, seqs, seed);
        assertClose(await runAttention(b, f, 0), denseAttention(f, 0), ATTENTION_TOLERANCE, `pagedAttention Hq=${numHeads} Hkv=${numKvHeads} d=${headDim}`);
        destroyAll(b, f.tensors);
      }
    });

    for (const headDim of [16, 64]) test(`head dim ${headDim}: a decode row with a Quest budget reads the selection buffers (chosen pages, partial page last); other rows read every global page`, async () => {
      const b = ctx.backend;
      const seqs: FixtureSeq[] = [
        { slot: 2, window: 16, startPos: 200, numRows: 1, admitRates: [0.6, 0.35], questBudget: 40 },
        { slot: 0, window: 32, startPos: 120, numRows: 9, admitRates: [0.5, 0.5], questBudget: 40 }, // prefill: the budget does not apply
        { slot: 1, window: 16, startPos: 90, numRows: 1, admitRates: [0.7, 0.2] }, //                   decode without a budget
      ];
      const shape: FixtureShape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim, kvDType: "bf16", numSlots: 3, maxWindow: 32 };
      const f = buildPagedFixture(b, shape, seqs, 220);
      const random = new TestRandom(221);
      const layer = 1;
      // by hand: for each KV head of sequence 0, some full pages (in list order) and the partial page last
      const stride = 16;
      const pages = new Int32Array(seqs.length * 2 * stride).fill(f.poisonPage);
      const numTokens = new Int32Array(seqs.length * 2).fill(-1);
      const chosen = [0, 1].map((g) => {
        const h = f.history[0][layer][g];
        const numFull = Math.floor(h.globalList.length / PAGE_SIZE), partial = h.globalList.length % PAGE_SIZE;
        const full = Array.from({ length: numFull }, (_, i) => i).filter(() => random.next() < 0.5);
        const list = partial > 0 ? [...full, numFull] : full;
        pages.set(list.map((i) => h.globalPages[i]), g * stride);
        numTokens[g] = full.length * PAGE_SIZE + partial;
        return new Set(list);
      });
      assert.ok(chosen.every((c, g) => c.size < f.history[0][layer][g].globalPages.length), "the case must leave some pages out");
      const selection: SelectionBuffers = {
        pages: i32Tensor(b, [seqs.length, 2, stride], pages, "Quest pages"),
        numTokens: i32Tensor(b, [seqs.length, 2], numTokens, "Quest tokens"),
        stride,
      };
      const got = await runAttention(b, { ...f, batch: { ...f.batch, selection } }, layer);
      const readsGlobal = (s: number, g: number, t: number) => s !== 0 || chosen[g].has(t >> 4);
      assertClose(got, denseAttention(f, layer, readsGlobal), ATTENTION_TOLERANCE, "pagedAttention with Quest's selection");
      assert.ok(relativeError(got, denseAttention(f, layer)) > 1e-2, "reading every global page would pass");
      destroyAll(b, [...f.tensors, selection.pages, selection.numTokens]);
    });
  });
}

/** Runs pagedAttention of `layer` over the fixture's batch into a NaN-filled output; returns it. */
export async function runAttention(b: Backend, f: PagedFixture, layer: number): Promise<Float32Array> {
  const out = filledF32(b, [f.numRows, f.dims.numHeads * f.dims.headDim], NaN, "attention out");
  b.pagedAttention(out, f.q, f.k, f.v, f.pool, layer, f.batch, f.dims);
  const got = await readF32(b, out);
  b.destroyTensor(out);
  return got;
}
