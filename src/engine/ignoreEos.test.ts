/** generate's ignoreEos: the answer runs on past end-of-sequence to maxNewTokens (benchmarks' fixed lengths). */
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
