/** generate options for tools: ignoreEos runs past end-of-sequence to maxNewTokens (benchmarks); onPromptProgress reports a long prefill. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { generateText, loadModel, type Model } from "../index.js";

let model: Model;
before(async () => {
  model = await loadModel(undefined, { threads: 1, maxSeqs: 2 });
});
after(() => model.dispose());

test("without ignoreEos the greedy answer ends at its end-of-sequence token; with it, at maxNewTokens", async () => {
  const prompt = { messages: [{ role: "user", content: "What is the special magic number for blue-pencil-31?" }] };
  const plain = await generateText(model, prompt, { maxNewTokens: 80 });
  assert.equal(plain.finishReason, "eos");
  const n = plain.tokenIds.length;
  assert.ok(model.eosTokenIds.has(plain.tokenIds[n - 1]));
  const long = await generateText(model, prompt, { maxNewTokens: n + 10, ignoreEos: true });
  assert.equal(long.finishReason, "length");
  assert.equal(long.tokenIds.length, n + 10);
  assert.deepEqual(long.tokenIds.slice(0, n), plain.tokenIds, "the same tokens up to the end-of-sequence one");
  assert.ok(long.text.startsWith(plain.text));
});

test("onPromptProgress reports the prompt read chunk by chunk, ending at its length", async () => {
  const ids = Array.from({ length: 700 }, (_, i) => 100 + (i % 500));
  const seen: [number, number][] = [];
  const r = await generateText(model, ids, { maxNewTokens: 2, onPromptProgress: (done, total) => seen.push([done, total]) });
  assert.equal(r.tokenIds.length, 2);
  assert.ok(seen.length >= 2, `a 700-token prompt is read in chunks of at most 512: ${JSON.stringify(seen)}`);
  assert.ok(seen.every(([, total]) => total === 700));
  assert.deepEqual(seen.at(-1), [700, 700]);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] > seen[i - 1][0]);
});
