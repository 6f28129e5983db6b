/**
 * The host's plan of paged attention: every block's key tiles are covered
 * once by its splits, in order; blocks split only down to minSplitTiles
 * tiles per item; decode rows go to the small-block list; reused arrays
 * give the same plans; a gated chunk longer than its window names its
 * step flags, and keeps off the small-block list.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ADMIT_FULL, ADMIT_RANDOM, SEQ_ADMISSION, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import { planAttention, PlanScratch, type AttentionPlanInput } from "./attentionPlan.js";
import { attentionShape, IT_ADMIT, IT_G, IT_ROW0, IT_TILE0, IT_TILE1, ITEM_WORDS, NO_ADMIT, REDUCE_WORDS } from "./kernels/attentionKernels.js";

/** One decode row per sequence, `past` tokens cached, `global` of them in the global cache, 2 KV heads. */
function decodeInput(past: number[], global: number, targetWorkgroups: number, minSplitTiles?: number): AttentionPlanInput {
  const seqs = new Int32Array(past.length * SEQ_FIELDS);
  past.forEach((p, s) => {
    const f = s * SEQ_FIELDS;
    seqs[f + SEQ_ROW_START] = s;
    seqs[f + SEQ_NUM_ROWS] = 1;
    seqs[f + SEQ_START_POS] = p;
    seqs[f + SEQ_WINDOW] = 256;
    seqs[f + SEQ_SLOT] = s;
  });
  return {
    seqs, numSeqs: past.length, numGlobal: new Int32Array(past.length * 2).fill(global), layer: 0, numLayers: 1, numKvHeads: 2,
    rowStride: 64, maxWindow: 256, quest: null, targetWorkgroups, minSplitTiles, smallQueries: 4,
  };
}

const shape = attentionShape(128, 4, "bf16", 32768);

test("attention plan: each block's tiles are split into contiguous ranges that cover them once", () => {
  for (const [target, minTiles] of [[1, 2], [64, 2], [512, 16], [512, 2]] as const) {
    const plan = planAttention(decodeInput([300, 5000], 4000, target, minTiles), shape);
    assert.equal(plan.numItems, 0, "decode rows run the small-block kernel");
    const byBlock = new Map<string, [number, number][]>();
    for (let i = 0; i < plan.numSmallItems; i++) {
      const at = i * ITEM_WORDS;
      const block = `${plan.smallItems[at + IT_G]}:${plan.smallItems[at + IT_ROW0]}`;
      byBlock.set(block, [...(byBlock.get(block) ?? []), [plan.smallItems[at + IT_TILE0], plan.smallItems[at + IT_TILE1]]]);
    }
    assert.equal(byBlock.size, 4);
    assert.equal(plan.numReduce, 4);
    for (let r = 0; r < plan.numReduce; r++) {
      const splits = plan.reduce[r * REDUCE_WORDS + 1];
      assert.ok(splits >= 1);
    }
    for (const [block, ranges] of byBlock) {
      assert.equal(ranges[0][0], 0, block);
      for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i][0], ranges[i - 1][1], `${block}: splits are contiguous`);
      const tiles = ranges[ranges.length - 1][1];
      // ring (at most W = 256 keys), global, and the row's own key
      const seq = Number(block.split(":")[1]);
      const past = seq === 0 ? 300 : 5000;
      const TK = shape.tileKeys;
      assert.equal(tiles, Math.ceil(Math.min(past, 256) / TK) + Math.ceil(4000 / TK) + 1, block);
      if (ranges.length > 1) for (const [a, b] of ranges) assert.ok(b - a >= Math.floor(minTiles / 2) && b - a >= 1, `${block}: split of ${b - a} tiles`);
      assert.ok(ranges.length <= Math.max(1, Math.ceil(tiles / minTiles)), `${block}: ${ranges.length} splits of ${tiles} tiles, at least ${minTiles} each`);
      assert.ok(ranges.length <= Math.max(1, Math.ceil(target / 4)));
    }
  }
});

test("attention plan: fewer splits where the minimum tiles per split binds", () => {
  const items = (minTiles: number) => planAttention(decodeInput([8192], 8192, 512, minTiles), shape).numSmallItems;
  // 2 heads, each of ring (256 keys) + global (8192) + the row's own key, in tiles of TK keys: 256 splits wanted per head
  const tiles = Math.ceil(256 / shape.tileKeys) + Math.ceil(8192 / shape.tileKeys) + 1;
  assert.equal(items(2), 2 * 256);
  assert.equal(items(16), 2 * Math.ceil(tiles / 16));
  assert.equal(items(1e6), 2);
});

test("attention plan: plans made with reused scratch arrays are the plans made with fresh ones", () => {
  const scratch = new PlanScratch();
  // larger, smaller, then larger again: views of grown and of partly used arrays
  for (const [past, global, target, minTiles] of [[[300, 5000], 4000, 512, 2], [[40], 0, 64, 2], [[8192, 9000, 100], 8192, 512, 16], [[5000], 17, 1, 2]] as const) {
    const input = decodeInput([...past], global, target, minTiles);
    const fresh = planAttention(input, shape);
    const reused = planAttention(input, shape, scratch);
    for (const key of ["items", "smallItems", "reduce"] as const) assert.deepEqual(reused[key], fresh[key], `${past}: ${key}`);
    assert.deepEqual([reused.numItems, reused.numSmallItems, reused.numReduce, reused.numPartials], [fresh.numItems, fresh.numSmallItems, fresh.numReduce, fresh.numPartials]);
  }
});

test("attention plan: a gated chunk longer than its window reads its keys by the step's flags, and only then", () => {
  // sequence 0: 41 rows, window 16, random admission; sequence 1: the same under full admission; sequence 2: 16 rows, random
  const rows = [[0, 41, ADMIT_RANDOM], [41, 41, ADMIT_FULL], [82, 16, ADMIT_RANDOM]] as const;
  const seqs = new Int32Array(rows.length * SEQ_FIELDS);
  rows.forEach(([row0, T, admission], s) => {
    const f = s * SEQ_FIELDS;
    [seqs[f + SEQ_ROW_START], seqs[f + SEQ_NUM_ROWS], seqs[f + SEQ_START_POS], seqs[f + SEQ_WINDOW], seqs[f + SEQ_SLOT], seqs[f + SEQ_ADMISSION]] = [row0, T, 20, 16, s, admission];
  });
  const input: AttentionPlanInput = {
    seqs, numSeqs: rows.length, numGlobal: new Int32Array(rows.length * 2).fill(3), layer: 0, numLayers: 1, numKvHeads: 2,
    rowStride: 8, maxWindow: 16, quest: null, targetWorkgroups: 1, smallQueries: 4,
  };
  const small = attentionShape(16, 4, "f32", 32768);
  assert.throws(() => planAttention(input, small), /sequence 0 has a chunk of 41 queries, more than its window 16, and the batch has no admit flags/);
  const plan = planAttention({ ...input, admitted: { byteBase: 1002, numRows: 98 } }, small);
  const admitOf = new Map<string, number>();
  for (const [list, n] of [[plan.items, plan.numItems], [plan.smallItems, plan.numSmallItems]] as const) {
    for (let i = 0; i < n; i++) admitOf.set(`${list[i * ITEM_WORDS + IT_ROW0]}:${list[i * ITEM_WORDS + IT_G]}`, list[i * ITEM_WORDS + IT_ADMIT]);
  }
  assert.deepEqual(Object.fromEntries(admitOf), { "0:0": 1002, "0:1": 1002 + 98, "41:0": NO_ADMIT, "41:1": NO_ADMIT, "82:0": NO_ADMIT, "82:1": NO_ADMIT });
  // 41 rows in blocks of 8 with group 4, then one of 1 row: the gated chunk's in `items` (the decode kernels see chunk keys causally)
  const smallRows = new Set(Array.from({ length: plan.numSmallItems }, (_, i) => plan.smallItems[i * ITEM_WORDS + IT_ROW0]));
  assert.deepEqual([...smallRows], [41]);
});
