/**
 * @module backends/conformance/quest
 *
 * Quest (Tang et al. 2024) on the device: updatePageBounds keeps each
 * listed page's per-channel min and max over its first n keys (as stored:
 * 16-bit pages at page precision), and questSelect picks, for each decode
 * row of a sequence with a budget, the full global pages of highest upper
 * bound sum_c max(q_c min_c, q_c max_c) (max over the KV head's query
 * heads; ties to the lower index in the head's list), as many as fit the
 * budget next to the partial last page, which is always read; in list
 * order. A budget above the context reads everything. Exact: the choice is
 * discrete (scores here are far from ties unless made equal on purpose).
 *
 * The pages chosen then feed pagedAttention (attention.ts's rule, 2e-6).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AttentionBatch, AttentionDims, KvDType, SelectionBuffers } from "../backend.js";
import { PAGE_SIZE, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import { destroyAll, f32Tensor, i32Tensor, tensorFrom, type ConformanceContext } from "./context.js";
import { ATTENTION_TOLERANCE, runAttention } from "./attention.js";
import { buildPagedFixture, denseAttention, type FixtureSeq } from "./pagedFixture.js";
import { assertClose, roundToKv, TestRandom } from "./testData.js";

const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];

export function describeQuest(ctx: ConformanceContext): void {
  describe("Quest: updatePageBounds and questSelect", () => {
    for (const kvDType of KV_DTYPES) {
      test(`${kvDType} pages: bounds over the first n keys only, ties to the lower list index, partial page always read, budgets from below the partial page to above the context`, async () => {
        const b = ctx.backend;
        const random = new TestRandom(500 + KV_DTYPES.indexOf(kvDType));
        const d = 16, group = 2;
        const dims: AttentionDims = { numLayers: 1, numHeads: group, numKvHeads: 1, headDim: d };
        const q = random.floats(d);
        const sign = Array.from(q, (x) => (x < 0 ? -1 : 1));
        // the head's global list: pages A B C D E (full) and F (5 tokens); page ids out of list order
        const ids = { A: 3, B: 0, C: 5, D: 1, E: 4, F: 2 };
        const list = [ids.A, ids.B, ids.C, ids.D, ids.E, ids.F];
        const cd = random.floats(PAGE_SIZE * d, 2); // C and D hold the same keys: a tie, won by C (lower list index, higher page id)
        const keysOf: Record<keyof typeof ids, Float32Array> = {
          A: random.floats(PAGE_SIZE * d, 1),
          // B's first 9 keys are small; keys 9..15 would make it the best page if they counted
          B: Float32Array.from({ length: PAGE_SIZE * d }, (_, i) => (i < 9 * d ? 0.1 * random.uniform() : 40 * sign[i % d])),
          C: cd,
          D: cd,
          E: random.floats(PAGE_SIZE * d, 0.5),
          F: random.floats(PAGE_SIZE * d, 1),
        };
        const pool = b.createKvPool(8, d, kvDType);
        const keys = new Float32Array(8 * PAGE_SIZE * d);
        for (const [name, page] of Object.entries(ids)) keys.set(keysOf[name as keyof typeof ids], page * PAGE_SIZE * d);
        const allSlots = Array.from({ length: 8 * PAGE_SIZE }, (_, i) => i);
        const tensors = [f32Tensor(b, [8 * PAGE_SIZE, d], keys, "keys"), f32Tensor(b, [8 * PAGE_SIZE, d], keys, "values"), i32Tensor(b, [8 * PAGE_SIZE], allSlots, "slots")];
        b.writeKv(pool, tensors[0], tensors[1], tensors[2], 0, 8 * PAGE_SIZE);
        // B over its first 9 keys in a call of its own; then every page, with entries outside [first, first + count) that would spoil B
        tensors.push(i32Tensor(b, [1, 2], [ids.B, 9], "bounds of B"));
        b.updatePageBounds(pool, tensors[3], 0, 1);
        const entries = [[ids.B, 16], [ids.A, 16], [ids.C, 16], [ids.D, 16], [ids.E, 16], [ids.F, 5], [ids.B, 16]];
        tensors.push(i32Tensor(b, [entries.length, 2], entries.flat(), "page bounds"));
        b.updatePageBounds(pool, tensors[4], 1, 5);

        // four decode rows of one slot (W = 16, 16 + 85 tokens cached), budgets 21, 44, 1000 and 3
        const budgets = [5 + 16, 5 + 32 + 7, 1000, 3];
        const numGlobal = 5 * PAGE_SIZE + 5;
        const fields = new Int32Array(budgets.length * SEQ_FIELDS);
        budgets.forEach((budget, s) => {
          const f = s * SEQ_FIELDS;
          [fields[f + SEQ_ROW_START], fields[f + SEQ_NUM_ROWS], fields[f + SEQ_START_POS], fields[f + SEQ_WINDOW], fields[f + SEQ_SLOT], fields[f + SEQ_QUEST_BUDGET]] = [s, 1, 16 + numGlobal, 16, 0, budget];
        });
        const stride = 8;
        const selection: SelectionBuffers = {
          pages: i32Tensor(b, [budgets.length, 1, stride], new Int32Array(budgets.length * stride).fill(-1), "Quest pages"),
          numTokens: i32Tensor(b, [budgets.length, 1], new Int32Array(budgets.length).fill(-1), "Quest tokens"),
          stride,
        };
        const batch: AttentionBatch = {
          seqs: i32Tensor(b, [budgets.length, SEQ_FIELDS], fields, "sequence fields"),
          numSeqs: budgets.length,
          numGlobal: i32Tensor(b, [budgets.length, 1, 1], new Int32Array(budgets.length).fill(numGlobal), "global counts"),
          tables: {
            blockTables: i32Tensor(b, [1, 1, 1, 1 + list.length], [7, ...list], "block tables"),
            ringFlags: tensorFrom(b, [1, 1, 1, 16], "u8", new Uint8Array(16), "ring flags"),
            numSlots: 1, rowStride: 1 + list.length, maxWindow: 16,
          },
          selection,
        };
        // every row's query heads: q and a weaker copy, so the max over the group is q's
        const qRows = f32Tensor(b, [budgets.length, group * d], Array.from({ length: budgets.length * group * d }, (_, i) => q[i % d] * (Math.floor(i / d) % group === 0 ? 1 : 0.5)), "q");
        b.questSelect(qRows, pool, 0, batch, dims);
        const [pages, tokens] = await b.read([{ tensor: selection.pages }, { tensor: selection.numTokens }]);
        const chosen = (s: number) => Array.from(pages.subarray(s * stride, s * stride + [2, 3, 6, 1][s]));
        assert.deepEqual(chosen(0), [ids.C, ids.F], "budget 21: the best full page (C wins the tie with D by list index) and the partial page");
        assert.deepEqual(chosen(1), [ids.C, ids.D, ids.F], "budget 44: the two best full pages in list order, then the partial page");
        assert.deepEqual(chosen(2), list, "a budget above the context reads every page");
        assert.deepEqual(chosen(3), [ids.F], "a budget below the partial page still reads the partial page");
        assert.deepEqual(Array.from(tokens), [21, 37, numGlobal, 5]);
        destroyAll(b, [...tensors, qRows, selection.pages, selection.numTokens, batch.seqs, batch.numGlobal, batch.tables.blockTables, batch.tables.ringFlags]);
      });
    }

    test("random heads: the selection matches an independent one, and pagedAttention reads just the chosen pages", async () => {
      const b = ctx.backend;
      const seqs: FixtureSeq[] = [
        { slot: 3, window: 16, startPos: 300, numRows: 1, admitRates: [0.5, 0.25], questBudget: 70 },
        { slot: 0, window: 32, startPos: 260, numRows: 1, admitRates: [0.9, 0.4], questBudget: 100 },
        { slot: 1, window: 16, startPos: 150, numRows: 1, admitRates: [0.3, 0.05], questBudget: 4000 },
        { slot: 2, window: 16, startPos: 100, numRows: 6, admitRates: [0.5, 0.5], questBudget: 20 }, // prefill: every page is read
      ];
      const kvDType: KvDType = "f16";
      const f = buildPagedFixture(b, { numLayers: 2, numHeads: 6, numKvHeads: 2, headDim: 16, kvDType, numSlots: 4, maxWindow: 32 }, seqs, 510, 3);
      const layer = 1, H = 2, group = 3, d = 16;
      const round = roundToKv(kvDType);
      const entries: number[] = [];
      for (let s = 0; s < 3; s++) for (let g = 0; g < H; g++) {
        const h = f.history[s][layer][g];
        h.globalPages.forEach((page, i) => entries.push(page, Math.min(PAGE_SIZE, h.globalList.length - i * PAGE_SIZE)));
      }
      const bounds = i32Tensor(b, [entries.length / 2, 2], entries, "page bounds");
      b.updatePageBounds(f.pool, bounds, 0, entries.length / 2);
      const stride = 32;
      const selection: SelectionBuffers = {
        pages: i32Tensor(b, [seqs.length, H, stride], new Int32Array(seqs.length * H * stride).fill(-1), "Quest pages"),
        numTokens: i32Tensor(b, [seqs.length, H], new Int32Array(seqs.length * H).fill(-1), "Quest tokens"),
        stride,
      };
      const batch = { ...f.batch, selection };
      b.questSelect(f.q, f.pool, layer, batch, f.dims);
      const [pages, tokens] = await b.read([{ tensor: selection.pages }, { tensor: selection.numTokens }]);
      const chosen: Set<number>[][] = [];
      let someLeftOut = false;
      for (let s = 0; s < 3; s++) {
        chosen.push([]);
        for (let g = 0; g < H; g++) {
          const h = f.history[s][layer][g];
          const qHeads = Array.from({ length: group }, (_, i) => f.qHost.subarray(((f.rowStart[s]) * 6 + g * group + i) * d, (f.rowStart[s] * 6 + g * group + i + 1) * d));
          const want = selectPages(h.globalList.length, (t, c) => round(h.keys[h.globalList[t] * d + c]), qHeads, d, seqs[s].questBudget!);
          const what = `sequence ${s} head ${g}`;
          assert.deepEqual(Array.from(pages.subarray((s * H + g) * stride, (s * H + g) * stride + want.pages.length)), want.pages.map((i) => h.globalPages[i]), `${what}: pages`);
          assert.equal(tokens[s * H + g], want.numTokens, `${what}: tokens`);
          chosen[s].push(new Set(want.pages));
          someLeftOut ||= want.pages.length < h.globalPages.length;
        }
      }
      assert.ok(someLeftOut, "the case must leave some pages out");
      const got = await runAttention(b, { ...f, batch }, layer);
      assertClose(got, denseAttention(f, layer, (s, g, t) => s === 3 || chosen[s][g].has(t >> 4)), ATTENTION_TOLERANCE, "pagedAttention over Quest's pages");
      destroyAll(b, [...f.tensors, bounds, selection.pages, selection.numTokens]);
    });
  });
}

/** Quest's choice, written from its definition: indices into the head's global pages, and the tokens they hold. */
function selectPages(numGlobal: number, key: (t: number, c: number) => number, qHeads: readonly Float32Array[], d: number, budget: number): { pages: number[]; numTokens: number } {
  const numFull = Math.floor(numGlobal / PAGE_SIZE), partial = numGlobal % PAGE_SIZE;
  const maxFull = Math.floor(Math.max(0, budget - partial) / PAGE_SIZE);
  const partialPage = partial > 0 ? [numFull] : [];
  if (numFull <= maxFull) return { pages: [...Array.from({ length: numFull }, (_, i) => i), ...partialPage], numTokens: numGlobal };
  const score = (page: number) => {
    let best = -Infinity;
    for (const q of qHeads) {
      let sum = 0;
      for (let c = 0; c < d; c++) {
        let lo = Infinity, hi = -Infinity;
        for (let o = 0; o < PAGE_SIZE; o++) {
          lo = Math.min(lo, key(page * PAGE_SIZE + o, c));
          hi = Math.max(hi, key(page * PAGE_SIZE + o, c));
        }
        sum += Math.max(q[c] * lo, q[c] * hi);
      }
      best = Math.max(best, sum);
    }
    return best;
  };
  const scores = Array.from({ length: numFull }, (_, i) => score(i));
  const best = Array.from({ length: numFull }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, maxFull).sort((a, b) => a - b);
  return { pages: [...best, ...partialPage], numTokens: maxFull * PAGE_SIZE + partial };
}
