/**
 * @module kvcache/stepPlannerBatch.test
 *
 * How a step lays several sequences out as rows: sequences without a gate
 * first, then those sharing a gate next to each other (first-seen gate
 * first), order otherwise kept, so each gate scores one contiguous run of
 * rows; the logits rows (those logitsFrom asks for, and the sampled row,
 * always the sequence's last) and where each sequence's results are found.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GateHandle } from "../backends/backend.js";
import { bitsOfF32, SAMPLE_FIELDS, SEQ_FIELDS } from "../backends/stepLayout.js";
import { gateAdmission, localOnly } from "./admission.js";
import { BlockPool } from "./blockPool.js";
import { resolveKvPolicy } from "./kvPolicy.js";
import { SequenceCache } from "./sequenceCache.js";
import { planStep } from "./stepPlanner.js";
import type { StepEntry } from "./stepPlan.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const dims = { numLayers: 1, numKvHeads: 1, tableRowStride: 3, observationWindow: 16 };
const gate1 = { gate: {} } as unknown as GateHandle;
const gate2 = { gate: {} } as unknown as GateHandle;

function newEntry(pool: BlockPool, slot: number, ids: number[], over: Partial<StepEntry> = {}): StepEntry {
  const cache = new SequenceCache(pool, { numLayers: 1, numKvHeads: 1, headDim: 4, bytesPerElement: 4, window: 16 });
  return { cache, slot, policy: resolveKvPolicy({ window: 16 }), ids, sample: null, logitsFrom: null, drops: [], ...over };
}

test("rows: ungated sequences first, then one run per gate; pages, fields and outputs follow that order", () => {
  const pool = new BlockPool(64);
  const gated = (gate: GateHandle, tau: number) => resolveKvPolicy({ window: 16, admission: gateAdmission(tau), gate });
  const a = newEntry(pool, 0, [1, 2, 3], { policy: gated(gate1, 0.1), sample: { temperature: 0.7, topK: 5, topP: 0.5, u: 0.125 } });
  const b = newEntry(pool, 1, [4, 5], { logitsFrom: 0, sample: { temperature: 0, topK: 0, topP: 1, u: 0 } });
  const c = newEntry(pool, 2, [6], { policy: gated(gate2, 0.3) });
  const d = newEntry(pool, 3, [7, 8, 9, 10], { policy: gated(gate1, 0.1), logitsFrom: 2, sample: { temperature: 1, topK: 0, topP: 0.25, u: 0.5 } });
  const e = newEntry(pool, 4, [11, 12, 13, 14, 15], { policy: resolveKvPolicy({ window: 16, admission: localOnly }) });
  const plan = planStep([a, b, c, d, e], dims);

  assert.deepEqual(plan.entries, [b, e, a, d, c]);
  assert.deepEqual(Array.from(plan.ids), [4, 5, 11, 12, 13, 14, 15, 1, 2, 3, 7, 8, 9, 10, 6]);
  assert.deepEqual(Array.from(plan.positions), [0, 1, 0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 0]);
  assert.deepEqual(plan.gateRuns, [{ gate: gate1, row0: 7, numRows: 7 }, { gate: gate2, row0: 14, numRows: 1 }]);
  // ring pages in row order: b 1, e 2, a 3, d 4, c 5
  assert.deepEqual(Array.from(plan.slotMapping), [16, 17, ...range(32, 37), 48, 49, 50, ...range(64, 68), 80]);
  assert.deepEqual(Array.from(plan.tableUpdates), [3, 1, 12, 2, 0, 3, 9, 4, 6, 5]); // slot * rowStride, page
  const tau = (x: number) => bitsOfF32(x);
  assert.deepEqual(Array.from(plan.seqFields), [
    0, 2, 0, 16, 1, 0, 0, 0, 0, 0, 0, 0, // b: full
    2, 5, 0, 16, 4, 1, 0, 0, 0, 0, 0, 0, // e: local
    7, 3, 0, 16, 0, 4, tau(0.1), 0, 0, 0, 0, 0, // a: gate 1
    10, 4, 0, 16, 3, 4, tau(0.1), 0, 0, 0, 0, 0, // d: gate 1
    14, 1, 0, 16, 2, 4, tau(0.3), 0, 0, 0, 0, 0, // c: gate 2
  ]);
  assert.equal(plan.seqFields.length, 5 * SEQ_FIELDS);
  // logits: b's two asked rows, a's sampled row, d's rows from position 2; each sample reads its sequence's last row
  assert.deepEqual(Array.from(plan.logitRows), [0, 1, 9, 12, 13]);
  assert.equal(plan.numSamples, 3);
  assert.deepEqual(Array.from(plan.sampleParams), [1, 0, 0, 1, 0, 0, 2, 0.7, 5, 0.5, 0.125, 0, 4, 1, 0, 0.25, 0.5, 0].map(Math.fround));
  assert.equal(plan.sampleParams.length, 3 * SAMPLE_FIELDS);
  const outputs = plan.outputs.map(({ snapHeads: _, ...o }) => o);
  assert.deepEqual(outputs, [
    { rowStart: 0, numRows: 2, startPos: 0, sampleIndex: 0, logitsRow0: 0, numLogitsRows: 2, logitsPos0: 0 },
    { rowStart: 2, numRows: 5, startPos: 0, sampleIndex: -1, logitsRow0: 2, numLogitsRows: 0, logitsPos0: 5 },
    { rowStart: 7, numRows: 3, startPos: 0, sampleIndex: 1, logitsRow0: 2, numLogitsRows: 1, logitsPos0: 2 },
    { rowStart: 10, numRows: 4, startPos: 0, sampleIndex: 2, logitsRow0: 3, numLogitsRows: 2, logitsPos0: 2 },
    { rowStart: 14, numRows: 1, startPos: 0, sampleIndex: -1, logitsRow0: 5, numLogitsRows: 0, logitsPos0: 1 },
  ]);
});

test("a gate policy's sequences stay in their given order; a lone gate is one run", () => {
  const pool = new BlockPool(64);
  const policy = resolveKvPolicy({ window: 16, admission: gateAdmission(0.1), gate: gate1 });
  const x = newEntry(pool, 0, [1], { policy });
  const y = newEntry(pool, 1, [2, 3], { policy });
  const z = newEntry(pool, 2, [4]);
  const plan = planStep([x, y, z], dims);
  assert.deepEqual(plan.entries, [z, x, y]);
  assert.deepEqual(plan.gateRuns, [{ gate: gate1, row0: 1, numRows: 3 }]);
  assert.deepEqual(planStep([], dims).numRows, 0);
});

test("logits rows: those at positions >= logitsFrom, the sampled row last; each output names its rows' positions", () => {
  const pool = new BlockPool(64);
  const sample = { temperature: 0, topK: 0, topP: 1, u: 0 };
  // from position 3 of a 10-token chunk: rows 3..9, the sample reads the last of them
  const mid = planStep([newEntry(pool, 0, range(0, 10), { logitsFrom: 3, sample })], dims);
  assert.deepEqual(Array.from(mid.logitRows), range(3, 10));
  assert.equal(mid.sampleParams[0], 6);
  assert.deepEqual([mid.outputs[0]!.logitsRow0, mid.outputs[0]!.numLogitsRows, mid.outputs[0]!.logitsPos0], [0, 7, 3]);
  // logits asked from a position past the chunk: only the sampled row, which holds position 9
  const past = planStep([newEntry(pool, 1, range(0, 10), { logitsFrom: 12, sample })], dims);
  assert.deepEqual(Array.from(past.logitRows), [9]);
  assert.deepEqual([past.outputs[0]!.numLogitsRows, past.outputs[0]!.logitsPos0], [1, 9]);
  // asked rows but no sample (a prompt scored without generating)
  const noSample = planStep([newEntry(pool, 2, range(0, 4), { logitsFrom: 0 })], dims);
  assert.deepEqual([Array.from(noSample.logitRows), noSample.numSamples, noSample.outputs[0]!.sampleIndex], [[0, 1, 2, 3], 0, -1]);
  // a decode step after logitsFrom reads its one row
  const cache = noSample.entries[0]!.cache;
  cache.commitFlags([0, 0, 0, 0], 4);
  const decode = planStep([{ ...noSample.entries[0]!, ids: [5], sample }], dims);
  assert.deepEqual([Array.from(decode.logitRows), decode.outputs[0]!.logitsPos0, decode.outputs[0]!.numLogitsRows], [[0], 4, 1]);
});
