/**
 * Golden end-to-end tests: the transformers references of every supported
 * architecture and the full-attention entries of the default model's golden file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { argmax } from "../generate/sampler.js";
import { loadModel } from "../index.js";
import { generateAll } from "./generate.js";
import { ARCH_FIXTURES, archDir, DEFAULT_MODEL_DIR, readGolden, readJson, relativeL2, type ArchReference } from "../testing/fixtures.js";
import type { Model } from "./model.js";

/** Argmax of every position and the last logits of a prompt. */
async function runPrompt(model: Model, ids: readonly number[]): Promise<{ argmax: number[]; last: Float32Array }> {
  const V = model.config.vocabSize;
  const argmaxes: number[] = [];
  const kv = model.createSequence(ids.length);
  try {
    const last = await model.prefill(ids, kv, (logits, _first, n) => {
      for (let t = 0; t < n; t++) argmaxes.push(argmax(logits, t * V, V));
    });
    return { argmax: argmaxes, last };
  } finally {
    kv.release();
  }
}

for (const name of ARCH_FIXTURES) {
  test(`${name}: argmax, last logits and greedy ids match transformers`, async () => {
    const ref = readJson<ArchReference>(join(archDir(name), "reference.json"));
    // NOTE: these references come from a model cast to bf16 and back, which rounds
    // transformers' RoPE frequency buffer to bf16 (see model/rope.ts).
    const model = await loadModel(archDir(name), { ropeFreqDType: "bf16" });
    try {
      const { argmax: am, last } = await runPrompt(model, ref.input_ids);
      assert.deepEqual(am, ref.argmax);
      const rel = relativeL2(last, ref.last_logits);
      assert.ok(rel < 1e-3, `last_logits relative L2 ${rel}`);
      const greedy = await generateAll(model, ref.input_ids, { maxNewTokens: ref.greedy_ids.length });
      assert.deepEqual(greedy.tokenIds, ref.greedy_ids);
    } finally {
      model.dispose();
    }
  });
}

test("f32 RoPE frequencies (transformers' own loading) stay close to the bf16-cast references", async () => {
  const ref = readJson<ArchReference>(join(archDir("llama3-scaled"), "reference.json"));
  const model = await loadModel(archDir("llama3-scaled"));
  try {
    const { argmax: am, last } = await runPrompt(model, ref.input_ids);
    assert.deepEqual(am, ref.argmax);
    const rel = relativeL2(last, ref.last_logits);
    assert.ok(rel > 1e-4 && rel < 1e-2, `the two precisions should differ slightly, got ${rel}`);
  } finally {
    model.dispose();
  }
});

const golden = readGolden();
for (const key of ["chat_short_full", "niah1500_full"]) {
  test(`default model ${key}: argmax per position, last logits and greedy ids match`, async () => {
    const entry = golden[key];
    const model = await loadModel(DEFAULT_MODEL_DIR);
    try {
      const { argmax: am, last } = await runPrompt(model, entry.prompt_ids);
      assert.deepEqual(am, entry.top5_ids.map((top) => top[0]));
      const rel = relativeL2(last, entry.last_logits);
      assert.ok(rel < 1e-3, `last_logits relative L2 ${rel}`);
      const greedy = await generateAll(model, entry.prompt_ids, { maxNewTokens: entry.greedy_ids.length + 8 });
      assert.deepEqual(greedy.tokenIds, entry.greedy_ids);
      assert.equal(greedy.finishReason, "eos");
      assert.equal(greedy.text, entry.greedy_text);
    } finally {
      model.dispose();
    }
  });
}
