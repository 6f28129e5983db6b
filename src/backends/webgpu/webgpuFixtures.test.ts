/**
 * The engine on the WebGPU backend against the transformers fixtures (in CI:
 * lavapipe): every architecture's argmax per position, last logits (1e-3
 * relative L2: f32 accumulation in another order than torch's) and greedy
 * ids, with the prompt prefilled whole and split; the default model's short
 * chat with WG-KV's gate; and sequences batched together giving what each
 * gives alone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR, loadModel } from "../../index.js";
import { runPrompt } from "../../testing/engineRun.js";
import { ARCH_FIXTURES, archDir, readGolden, readJson, relativeL2, type ArchReference } from "../../testing/fixtures.js";

/** Relative L2 of logits on the GPU (f32 sums in a different order than torch's and the CPU's). */
const GPU_LOGITS_TOLERANCE = 1e-3;

for (const name of ARCH_FIXTURES) {
  test(`webgpu ${name}: argmax, last logits and greedy ids match transformers (whole and split prefill)`, async () => {
    const ref = readJson<ArchReference>(join(archDir(name), "reference.json"));
    const model = await loadModel(archDir(name), { backend: "webgpu", ropeFreqDType: "bf16" });
    try {
      for (const singleTokenFrom of [undefined, Math.floor(ref.input_ids.length / 2)]) {
        const run = await runPrompt(model, ref.input_ids, { singleTokenFrom });
        assert.deepEqual(run.argmax, ref.argmax);
        const rel = relativeL2(run.last, ref.last_logits);
        assert.ok(rel < GPU_LOGITS_TOLERANCE, `last_logits relative L2 ${rel}`);
      }
      const greedy = await runPrompt(model, ref.input_ids, { maxNewTokens: ref.greedy_ids.length, logitsFrom: ref.input_ids.length });
      assert.deepEqual(greedy.result.tokenIds, ref.greedy_ids);
    } finally {
      model.dispose();
    }
  });
}

test("webgpu default model: the short chat (full attention) and with the write gate (W=64) match their references; batched as alone", async () => {
  const golden = readGolden();
  const model = await loadModel(DEFAULT_MODEL_DIR, { backend: "webgpu" });
  try {
    const entry = golden.chat_short_full;
    for (const singleTokenFrom of [undefined, Math.max(1, entry.prompt_ids.length - 8)]) {
      const run = await runPrompt(model, entry.prompt_ids, { singleTokenFrom });
      assert.deepEqual(run.argmax, entry.top5_ids.map((top) => top[0]));
      assert.ok(relativeL2(run.last, entry.last_logits) < GPU_LOGITS_TOLERANCE);
    }
    const greedy = await runPrompt(model, entry.prompt_ids, { maxNewTokens: entry.greedy_ids.length + 8, logitsFrom: entry.prompt_ids.length });
    assert.deepEqual(greedy.result.tokenIds, entry.greedy_ids);
    assert.equal(greedy.result.text, entry.greedy_text);
    // three prompts at once (continuous batching) give each its greedy ids alone
    const prompts = [entry.prompt_ids, entry.prompt_ids.slice(0, 20), entry.prompt_ids.slice(5)];
    const alone: number[][] = [];
    for (const p of prompts) alone.push((await runPrompt(model, p, { maxNewTokens: 6 })).result.tokenIds);
    const together = await Promise.all(prompts.map((p) => runPrompt(model, p, { maxNewTokens: 6, kv: { window: 64 } })));
    together.forEach((r, i) => assert.deepEqual(r.result.tokenIds, alone[i], `prompt ${i}`));
  } finally {
    model.dispose();
  }
});
