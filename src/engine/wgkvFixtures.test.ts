/**
 * WG-KV end to end on the default model against the dense visibility-rule
 * references: gate scores, admitted counts, argmax, last logits and greedy ids,
 * with the prompt prefilled whole and split (a prefix, then one token per step).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR, loadModel, type Model } from "../index.js";
import { CPU_LOGITS_TOLERANCE, runPrompt } from "../testing/engineRun.js";
import { readGolden, relativeL2 } from "../testing/fixtures.js";

const GATE = join(DEFAULT_MODEL_DIR, "gates/wgkv-tiny-chat-gate-0.16.pt");
const golden = readGolden();
let model: Model;

before(async () => {
  model = await loadModel(DEFAULT_MODEL_DIR);
});
after(() => model.dispose());

for (const window of [256, 64]) {
  const entry = golden[`niah1500_wgkv0.16_w${window}`];
  for (const split of [false, true]) {
    const singleTokenFrom = split ? 1200 + window / 16 : undefined;
    test(`gate 0.16, W=${window}, ${split ? `prefill ${singleTokenFrom} then one at a time` : "whole prefill"}: matches the dense reference`, async () => {
      const r = await runPrompt(model, entry.prompt_ids, { kv: { gate: GATE, window }, singleTokenFrom, traceGate: true });
      let worst = 0;
      r.scores!.forEach((layer, l) => layer.forEach((head, h) => head.forEach((g, p) => (worst = Math.max(worst, Math.abs(g - entry.gate_scores![l][h][p]))))));
      assert.ok(worst < 1e-4, `gate scores differ by up to ${worst}`);
      assert.deepEqual(r.result.kv.admittedByHead, entry.admitted);
      assert.deepEqual(r.argmax, entry.top5_ids.map((t) => t[0]));
      const rel = relativeL2(r.last, entry.last_logits);
      assert.ok(rel < CPU_LOGITS_TOLERANCE, `last_logits relative L2 ${rel}`);
      const stats = model.engine.stats();
      assert.equal(stats.numFreePages, stats.numUsablePages, "every page returns to the pool");
    });
  }
  test(`gate 0.16, W=${window}: greedy ids match`, async () => {
    const r = await runPrompt(model, entry.prompt_ids, { kv: { gate: GATE, window }, maxNewTokens: entry.greedy_ids.length + 4, logitsFrom: entry.prompt_ids.length });
    assert.deepEqual(r.result.tokenIds, entry.greedy_ids);
    assert.equal(r.result.text, entry.greedy_text);
  });
}

test("full attention through the dual cache with a small window still matches the full reference", async () => {
  const entry = golden.niah1500_full;
  const r = await runPrompt(model, entry.prompt_ids, { kv: { window: 64 }, logitsFrom: entry.prompt_ids.length - 1 });
  assert.ok(relativeL2(r.last, entry.last_logits) < CPU_LOGITS_TOLERANCE);
  assert.equal(r.result.kv.numGlobalTokens, model.config.numLayers * model.config.numKvHeads * (entry.prompt_ids.length - 64));
});
