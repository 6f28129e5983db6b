/**
 * WG-KV end to end on the default model against the dense visibility-rule
 * references: gate scores, admitted counts, argmax, last logits and greedy ids,
 * with the prompt prefilled whole and split (prefill P, then one token at a time).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { argmax } from "../generate/sampler.js";
import { generateAll } from "../engine/generate.js";
import { DEFAULT_MODEL_DIR, loadModel, type Model } from "../index.js";
import { resolveKvOptions } from "../platform/node/kvOptions.js";
import { readGolden, relativeL2 } from "../testing/fixtures.js";

const GATE = join(DEFAULT_MODEL_DIR, "gates/wgkv-tiny-chat-gate-0.16.pt");
const golden = readGolden();
let model: Model;

before(async () => {
  model = await loadModel(DEFAULT_MODEL_DIR);
});
after(() => model.dispose());

interface Run {
  argmax: number[];
  last: Float32Array;
  scores: number[][][]; // [layer][head][position]
  admitted: number[][];
}

async function run(ids: number[], window: number, numPrefill: number): Promise<Run> {
  const kvSettings = await resolveKvOptions(model, { gate: GATE, window });
  const kv = model.createSequence(ids.length, kvSettings);
  const { numLayers, numKvHeads, vocabSize: V } = model.config;
  const scores = Array.from({ length: numLayers }, () => Array.from({ length: numKvHeads }, () => new Array<number>(ids.length).fill(NaN)));
  kv.onGateScores = (layer, startPos, T, s) => {
    for (let h = 0; h < numKvHeads; h++) for (let t = 0; t < T; t++) scores[layer][h][startPos + t] = s[h * T + t];
  };
  const am: number[] = [];
  try {
    let last = await model.prefill(ids.slice(0, numPrefill), kv, (logits, _f, n) => {
      for (let t = 0; t < n; t++) am.push(argmax(logits, t * V, V));
    });
    for (const id of ids.slice(numPrefill)) {
      last = await model.step(id, kv);
      am.push(argmax(last));
    }
    return { argmax: am, last, scores, admitted: kv.report().admittedByHead };
  } finally {
    kv.release();
  }
}

for (const window of [256, 64]) {
  const entry = golden[`niah1500_wgkv0.16_w${window}`];
  for (const split of [false, true]) {
    const numPrefill = split ? 1200 + window / 16 : entry.prompt_ids.length;
    test(`gate 0.16, W=${window}, ${split ? `prefill ${numPrefill} then one at a time` : "whole prefill"}: matches the dense reference`, async () => {
      const r = await run(entry.prompt_ids, window, numPrefill);
      let worst = 0;
      r.scores.forEach((layer, l) => layer.forEach((head, h) => head.forEach((g, p) => (worst = Math.max(worst, Math.abs(g - entry.gate_scores![l][h][p]))))));
      assert.ok(worst < 1e-4, `gate scores differ by up to ${worst}`);
      assert.deepEqual(r.admitted, entry.admitted);
      assert.deepEqual(r.argmax, entry.top5_ids.map((t) => t[0]));
      const rel = relativeL2(r.last, entry.last_logits);
      assert.ok(rel < 1e-3, `last_logits relative L2 ${rel}`);
      const invariants = model.checkKvInvariants().get("f32")!;
      assert.equal(invariants.numFreePages, invariants.numUsablePages, "every page returns to the pool");
    });
  }
  test(`gate 0.16, W=${window}: greedy ids match`, async () => {
    const kv = await resolveKvOptions(model, { gate: GATE, window });
    const result = await generateAll(model, entry.prompt_ids, { maxNewTokens: entry.greedy_ids.length + 4, kv });
    assert.deepEqual(result.tokenIds, entry.greedy_ids);
    assert.equal(result.text, entry.greedy_text);
  });
}

test("full attention through the dual cache with a small window still matches the full reference", async () => {
  const entry = golden.niah1500_full;
  const kv = model.createSequence(entry.prompt_ids.length, { window: 64 });
  try {
    const last = await model.prefill(entry.prompt_ids, kv);
    assert.ok(relativeL2(last, entry.last_logits) < 1e-3);
    const report = kv.report();
    assert.equal(report.numGlobalTokens, model.config.numLayers * model.config.numKvHeads * (entry.prompt_ids.length - 64));
  } finally {
    kv.release();
  }
});
