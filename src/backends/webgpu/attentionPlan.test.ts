/**
 * The host's plan of paged attention: every block's key tiles are covered
 * once by its splits, in order; blocks split only down to minSplitTiles
 * tiles per item; decode rows go to the small-block list; reused arrays
 * give the same plans.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import { planAttention, PlanScratch, type AttentionPlanInput } from "./attentionPlan.js";
import { attentionShape, IT_G, IT_ROW0, IT_TILE0, IT_TILE1, ITEM_WORDS, REDUCE_WORDS } from "./kernels/attentionKernels.js";

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
