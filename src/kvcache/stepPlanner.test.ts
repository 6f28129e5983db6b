/**
 * @module kvcache/stepPlanner.test
 *
 * One step's plan for hand-built caches (a real BlockPool and
 * SequenceCaches), checked array by array against values worked out by hand:
 * token ids and positions, the sequence fields of stepLayout.ts, numGlobal
 * (after evictions, before promotions), the slot mapping [L, H, T], the copy
 * list (eviction moves first, then each layer's promotions), table updates as
 * absolute indices into the [slots, L, H, rowStride] block tables, Quest's
 * page bounds (for Quest sequences only), SnapKV's scoring requests and
 * Quest's budget (decode rows only). Batching across sequences (row order,
 * gate runs, logits rows, sampling) is in stepPlannerBatch.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SEQ_FIELDS, SNAP_FIELDS } from "../backends/stepLayout.js";
import { BlockPool } from "./blockPool.js";
import { SnapKvEviction } from "./eviction.js";
import { resolveKvPolicy } from "./kvPolicy.js";
import { questSelection } from "./selection.js";
import { SequenceCache } from "./sequenceCache.js";
import { planStep } from "./stepPlanner.js";
import type { StepEntry } from "./stepPlan.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const seqFields = (fields: Int32Array, s: number) => Array.from(fields.subarray(s * SEQ_FIELDS, (s + 1) * SEQ_FIELDS));
const greedy = { temperature: 0, topK: 0, topP: 1, u: 0 };

function entry(cache: SequenceCache, slot: number, numNew: number, over: Partial<StepEntry> = {}): StepEntry {
  return { cache, slot, policy: resolveKvPolicy({ window: cache.config.window }), ids: range(100, 100 + numNew), sample: null, logitsFrom: null, drops: [], ...over };
}

/** Appends the chunks with every token admitted. */
function fill(cache: SequenceCache, chunks: readonly number[]): void {
  const numHeads = cache.config.numLayers * cache.config.numKvHeads;
  for (const numNew of chunks) {
    cache.append(numNew);
    cache.commitFlags(new Uint8Array(numHeads * numNew).fill(1), numNew);
  }
}

test("prefill of one sequence: ids, positions, seq fields, slot mapping [L, H, T], absolute table updates, the sampled row", () => {
  const pool = new BlockPool(64);
  const cache = new SequenceCache(pool, { numLayers: 2, numKvHeads: 2, headDim: 4, bytesPerElement: 4, window: 32 });
  const dims = { numLayers: 2, numKvHeads: 2, tableRowStride: 6, observationWindow: 16 };
  const plan = planStep([entry(cache, 3, 5, { ids: [10, 11, 12, 13, 14], sample: { temperature: 0.5, topK: 40, topP: 0.9, u: 0.25 } })], dims);
  assert.deepEqual([plan.numRows, plan.numSeqs], [5, 1]);
  assert.deepEqual(Array.from(plan.ids), [10, 11, 12, 13, 14]);
  assert.deepEqual(Array.from(plan.positions), [0, 1, 2, 3, 4]);
  // row 0, 5 rows, from position 0, W 32, slot 3, full admission, no Quest budget, no observations
  assert.deepEqual(seqFields(plan.seqFields, 0), [0, 5, 0, 32, 3, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(plan.numGlobal), [0, 0, 0, 0]);
  // heads (0,0), (0,1), (1,0), (1,1) took ring pages 1..4
  assert.deepEqual(Array.from(plan.slotMapping), [...range(16, 21), ...range(32, 37), ...range(48, 53), ...range(64, 69)]);
  // entry 0 of head k of slot 3 is element ((3 * 2 * 2) + k) * 6 of the tables
  assert.deepEqual(Array.from(plan.tableUpdates), [72, 1, 78, 2, 84, 3, 90, 4]);
  assert.deepEqual([plan.copies.length, plan.numEvictionCopies, ...plan.layerCopyStart, ...plan.layerCopyCount], [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([plan.boundsBefore.length, plan.boundsAfter.length, plan.snapRequests.length, plan.numSnapScores], [0, 0, 0, 0]);
  assert.deepEqual(Array.from(plan.logitRows), [4]);
  assert.deepEqual(Array.from(plan.sampleParams), [0, 0.5, 40, Math.fround(0.9), 0.25, 0]);
  assert.equal(plan.numSamples, 1);
  assert.deepEqual(plan.gateRuns, []);
  assert.deepEqual([plan.usesQuest, plan.maxQuestPages, plan.usesObservations], [false, 0, false]);
  assert.deepEqual(plan.outputs, [{ rowStart: 0, numRows: 5, startPos: 0, sampleIndex: 0, logitsRow0: 0, numLogitsRows: 1, logitsPos0: 4, snapHeads: [] }]);
  // the plan committed the append: the caches wait for the step's flags (a step of 28 would push position 0, whose flag is unknown, out of the window of 32)
  assert.equal(cache.numTokens, 5);
  assert.throws(() => planStep([entry(cache, 3, 28)], dims), /never committed/);
  cache.commitFlags(new Uint8Array(20), 5);
  const decode = planStep([entry(cache, 3, 1, { ids: [7] })], dims);
  assert.deepEqual(Array.from(decode.positions), [5]);
  assert.deepEqual(seqFields(decode.seqFields, 0), [0, 1, 5, 32, 3, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(decode.slotMapping), [21, 37, 53, 69]);
  assert.deepEqual(Array.from(decode.tableUpdates), []);
});

/**
 * Two sequences, L = 1, H = 2, W = 16, each holding 48 tokens all admitted
 * (global positions 0..31 per head):
 * A (slot 0, Quest 32 + SnapKV 16): ring pages 1, 2; global [3, 5] and [4, 6].
 * B (slot 2, SnapKV 8):             ring pages 7, 8; global [9, 11] and [10, 12].
 */
function twoSequencesWithGlobals() {
  const pool = new BlockPool(32);
  const config = { numLayers: 1, numKvHeads: 2, headDim: 4, bytesPerElement: 4, window: 16 };
  const a = new SequenceCache(pool, config);
  fill(a, [16, 16, 16]);
  const b = new SequenceCache(pool, config);
  fill(b, [16, 16, 16]);
  assert.deepEqual([a.head(0, 0).globalPageIds, a.head(0, 1).globalPageIds, b.head(0, 0).globalPageIds, b.head(0, 1).globalPageIds], [[3, 5], [4, 6], [9, 11], [10, 12]]);
  const policyA = resolveKvPolicy({ window: 16, selection: questSelection(32), eviction: new SnapKvEviction(16) });
  const policyB = resolveKvPolicy({ window: 16, eviction: new SnapKvEviction(8) });
  return { pool, a, b, policyA, policyB };
}

test("decode with evictions: moves first, then promotions; numGlobal between; tables, Quest bounds and SnapKV requests exact", () => {
  const { a, b, policyA, policyB } = twoSequencesWithGlobals();
  const plan = planStep([
    entry(a, 0, 1, { policy: policyA, ids: [99], sample: greedy, drops: [{ layer: 0, head: 0, indices: [0, 5, 17] }] }),
    entry(b, 2, 1, { policy: policyB, ids: [98], drops: [{ layer: 0, head: 1, indices: [0] }] }),
  ], { numLayers: 1, numKvHeads: 2, tableRowStride: 5, observationWindow: 64 });

  // A head 0 keeps 29: holes 0, 5, 17 take global 29, 30, 31 (page 5 offsets 13..15);
  // B head 1 keeps 31: hole 0 (page 10) takes global 31 (page 12 offset 15)
  const evictions = [93, 48, 94, 53, 95, 81, 207, 160];
  // position 48 pushes out admitted position 32 (ring offset 0) on every head:
  // A head 0 -> global 29 (slot 93), A head 1 -> new page 13; B head 0 -> new page 14, B head 1 -> global 31 (slot 207)
  const promotions = [16, 93, 32, 208, 112, 224, 128, 207];
  assert.deepEqual(Array.from(plan.copies), [...evictions, ...promotions]);
  assert.equal(plan.numEvictionCopies, 4);
  assert.deepEqual([...plan.layerCopyStart, ...plan.layerCopyCount], [4, 4]);
  assert.deepEqual(Array.from(plan.numGlobal), [29, 32, 32, 31]);
  assert.deepEqual(Array.from(plan.slotMapping), [16, 112, 32, 128]); // [L=1, H=2, T=2]: head 0 rows A, B; head 1 rows A, B
  // A head 1 entry W/16 + 2 of slot 0 row 1; B head 0 entry W/16 + 2 of slot 2 row 0
  assert.deepEqual(Array.from(plan.tableUpdates), [(0 * 2 + 1) * 5 + 3, 13, (2 * 2 + 0) * 5 + 3, 14]);
  // Quest bounds for A only: before, the pages the moves wrote (keys held); after, the pages promotions wrote
  assert.deepEqual(Array.from(plan.boundsBefore), [3, 16, 5, 13]);
  assert.deepEqual(Array.from(plan.boundsAfter), [5, 14, 13, 1]);
  assert.deepEqual(seqFields(plan.seqFields, 0), [0, 1, 48, 16, 0, 0, 0, 0, 32, 1, 0, 0]);
  assert.deepEqual(seqFields(plan.seqFields, 1), [1, 1, 48, 16, 2, 0, 0, 0, 0, 1, 0, 0]);
  assert.deepEqual([plan.usesQuest, plan.maxQuestPages, plan.usesObservations], [true, 3, true]);
  // after the step A holds 30 / 33 global tokens (over 16 + 16: head 1), B 33 / 32 (over 8 + 16: both)
  assert.equal(SNAP_FIELDS, 8);
  assert.deepEqual(Array.from(plan.snapRequests), [
    0, 0, 1, 16, 33, 16, 49, 0, // slot, layer, head, W, numGlobal, numRing, numObs = min(49, 64), offset
    2, 0, 0, 16, 33, 16, 49, 33,
    2, 0, 1, 16, 32, 16, 49, 66,
  ]);
  assert.equal(plan.numSnapScores, 98);
  assert.deepEqual(plan.outputs.map((o) => o.snapHeads), [
    [{ layer: 0, head: 1, offset: 0, numGlobal: 33 }],
    [{ layer: 0, head: 0, offset: 33, numGlobal: 33 }, { layer: 0, head: 1, offset: 66, numGlobal: 32 }],
  ]);
  assert.deepEqual(Array.from(plan.logitRows), [0]);
  assert.deepEqual(Array.from(plan.sampleParams), [0, 0, 0, 1, 0, 0]);
  assert.deepEqual(Array.from(a.head(0, 0).globalPositions), [29, 1, 2, 3, 4, 30, ...range(6, 17), 31, ...range(18, 29), 32]);
});

test("SnapKV's observation count is capped by the tokens held", () => {
  const pool = new BlockPool(32);
  const cache = new SequenceCache(pool, { numLayers: 1, numKvHeads: 1, headDim: 4, bytesPerElement: 4, window: 16 });
  fill(cache, [16, 16]);
  // after this step 16 + 3 tokens have left the window: 19 global > budget 1 + 16
  const plan = planStep([entry(cache, 1, 3, { policy: resolveKvPolicy({ window: 16, eviction: new SnapKvEviction(1) }) })], { numLayers: 1, numKvHeads: 1, tableRowStride: 4, observationWindow: 64 });
  assert.deepEqual(Array.from(plan.snapRequests), [1, 0, 0, 16, 19, 16, 35, 0]);
  assert.deepEqual(Array.from(plan.boundsAfter), [], "no Quest, no bounds");
});

test("Quest's budget goes to decode rows only; a Quest prefill still refreshes bounds of the pages it promotes into", () => {
  const pool = new BlockPool(32);
  const cache = new SequenceCache(pool, { numLayers: 1, numKvHeads: 1, headDim: 4, bytesPerElement: 4, window: 16 });
  const policy = resolveKvPolicy({ window: 16, selection: questSelection(40) });
  const dims = { numLayers: 1, numKvHeads: 1, tableRowStride: 4, observationWindow: 16 };
  fill(cache, [16]);
  const prefill = planStep([entry(cache, 0, 3, { policy })], dims); // positions 16..18 promote 0..2 into new page 2
  assert.equal(seqFields(prefill.seqFields, 0)[8], 0);
  assert.deepEqual([prefill.usesQuest, prefill.maxQuestPages], [false, 0]);
  assert.deepEqual(Array.from(prefill.copies), [16, 32, 17, 33, 18, 34]);
  assert.deepEqual(Array.from(prefill.boundsAfter), [2, 3]);
  cache.commitFlags([1, 1, 1], 3);
  const decode = planStep([entry(cache, 0, 1, { policy })], dims);
  assert.equal(seqFields(decode.seqFields, 0)[8], 40);
  assert.deepEqual([decode.usesQuest, decode.maxQuestPages], [true, 3]);
  assert.deepEqual(Array.from(decode.boundsAfter), [2, 4]);
});
