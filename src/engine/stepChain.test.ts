/**
 * Decode steps recorded while the step before them runs (stepChain.ts), on
 * the WebGPU backend (in CI: lavapipe): the same tokens, finish reasons and
 * KV reports as one step at a time, for sequences that end by EOS, by a stop
 * string, by length and by an abort while their next step is in flight,
 * alone and batched, greedy and sampled, with full attention, random
 * admission and the write gate; and the chained steps are counted (none with chainSteps off).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_MODEL_DIR, generate, generateText, loadModel, type Model } from "../index.js";
import { TINY_GATE } from "../testing/server.js";

async function runAll(model: Model) {
  const chat = { messages: [{ role: "user" as const, content: "What is the capital of France?" }] };
  const out = [];
  out.push(await generateText(model, chat, { maxNewTokens: 64 }));
  out.push(await generateText(model, "Once upon a time", { maxNewTokens: 40, stop: ["message to get a message"] }));
  out.push(await generateText(model, "List three colors:", { maxNewTokens: 30, temperature: 0.8, seed: 5, kv: { admission: "random:0.3", window: 16 } }));
  // NOTE: the write gate decides on the device, inside the step: its steps chain too
  out.push(await generateText(model, chat, { maxNewTokens: 40, kv: { gate: TINY_GATE, window: 16 } }));
  out.push(...(await Promise.all([chat, "The sea is", "Tell me a story"].map((p, i) => generateText(model, p, { maxNewTokens: 12 + 9 * i, kv: i === 1 ? { admission: "random:0.2", window: 32 } : undefined })))));
  // NOTE: aborted from the token stream: the step after it is already in flight when chained
  const controller = new AbortController();
  const stream = generate(model, "Counting: one, two, three,", { maxNewTokens: 40, signal: controller.signal });
  let seen = 0;
  for await (const chunk of stream) if (chunk.tokenId >= 0 && ++seen === 7) controller.abort();
  out.push(await stream.result);
  return out.map((r) => ({ ids: r.tokenIds, reason: r.finishReason, kv: [r.kv.numTokens, r.kv.numAdmitted, r.kv.residentBytes] }));
}

test("chained decode steps give the tokens, finish reasons and caches of steps one at a time", async () => {
  const runs = [];
  for (const chainSteps of [false, true]) {
    const model = await loadModel(DEFAULT_MODEL_DIR, { backend: "webgpu", chainSteps, kvMemory: "64MiB" });
    try {
      runs.push({ results: await runAll(model), chained: model.engine.stats().numChainedSteps, steps: model.engine.stats().numSteps });
    } finally {
      model.dispose();
    }
  }
  const [apart, chained] = runs;
  assert.deepEqual(chained.results, apart.results);
  assert.deepEqual([...new Set(apart.results.map((r) => r.reason))].sort(), ["aborted", "eos", "length", "stop"]);
  assert.equal(apart.chained, 0);
  // NOTE: most decode steps chain (prefills, and the steps after them, do not)
  assert.ok(chained.chained > chained.steps / 2, `${chained.chained} of ${chained.steps} steps chained`);
});
