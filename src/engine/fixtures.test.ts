/**
 * Golden end-to-end tests through the engine: the transformers references of
 * every supported architecture and the full-attention entries of the default
 * model's golden file, prefilled whole and split (a prefix, then one token
 * per step as decode feeds them).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../index.js";
import { CPU_LOGITS_TOLERANCE, runPrompt } from "../testing/engineRun.js";
import { ARCH_FIXTURES, archDir, DEFAULT_MODEL_DIR, readGolden, readJson, relativeL2, type ArchReference } from "../testing/fixtures.js";

for (const name of ARCH_FIXTURES) {
  test(`${name}: argmax, last logits and greedy ids match transformers (whole and split prefill)`, async () => {
    const ref = readJson<ArchReference>(join(archDir(name), "reference.json"));
    // NOTE: these references come from a model cast to bf16 and back, which rounds
    // transformers' RoPE frequency buffer to bf16 (see model/rope.ts).
    const model = await loadModel(archDir(name), { ropeFreqDType: "bf16" });
    try {
      for (const singleTokenFrom of [undefined, Math.floor(ref.input_ids.length / 2)]) {
        const run = await runPrompt(model, ref.input_ids, { singleTokenFrom });
        assert.deepEqual(run.argmax, ref.argmax);
        const rel = relativeL2(run.last, ref.last_logits);
        assert.ok(rel < CPU_LOGITS_TOLERANCE, `last_logits relative L2 ${rel}`);
      }
      const greedy = await runPrompt(model, ref.input_ids, { maxNewTokens: ref.greedy_ids.length, logitsFrom: ref.input_ids.length });
      assert.deepEqual(greedy.result.tokenIds, ref.greedy_ids);
    } finally {
      model.dispose();
    }
  });
}

test("f32 RoPE frequencies (transformers' own loading) stay close to the bf16-cast references", async () => {
  const ref = readJson<ArchReference>(join(archDir("llama3-scaled"), "reference.json"));
  const model = await loadModel(archDir("llama3-scaled"));
  try {
    const run = await runPrompt(model, ref.input_ids);
    assert.deepEqual(run.argmax, ref.argmax);
    const rel = relativeL2(run.last, ref.last_logits);
    assert.ok(rel > 1e-4 && rel < 1e-2, `the two precisions should differ slightly, got ${rel}`);
  } finally {
    model.dispose();
  }
});

const golden = readGolden();
for (const key of ["chat_short_full", "niah1500_full"]) {
  test(`default model ${key}: argmax per position, last logits and greedy ids match (whole and split prefill)`, async () => {
    const entry = golden[key];
    const model = await loadModel(DEFAULT_MODEL_DIR);
    try {
      for (const singleTokenFrom of [undefined, Math.max(1, entry.prompt_ids.length - 40)]) {
        const run = await runPrompt(model, entry.prompt_ids, { singleTokenFrom });
        assert.deepEqual(run.argmax, entry.top5_ids.map((top) => top[0]));
        const rel = relativeL2(run.last, entry.last_logits);
        assert.ok(rel < CPU_LOGITS_TOLERANCE, `last_logits relative L2 ${rel}`);
      }
      const greedy = await runPrompt(model, entry.prompt_ids, { maxNewTokens: entry.greedy_ids.length + 8, logitsFrom: entry.prompt_ids.length });
      assert.deepEqual(greedy.result.tokenIds, entry.greedy_ids);
      assert.equal(greedy.result.finishReason, "eos");
      assert.equal(greedy.result.text, entry.greedy_text);
    } finally {
      model.dispose();
    }
  });
}
