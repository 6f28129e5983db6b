import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generate, loadModel, type Model } from "../index.js";
import { readGolden } from "../testing/fixtures.js";

let model: Model;
before(async () => {
  model = await loadModel();
});
after(() => model.dispose());

const question = { messages: [{ role: "user", content: "What is the special magic number for lively-pencil-22?" }] };

async function collect(stream: ReturnType<typeof generate>) {
  const chunks: string[] = [];
  const ids: number[] = [];
  let step = await stream.next();
  while (!step.done) {
    chunks.push(step.value.text);
    if (step.value.tokenId >= 0) ids.push(step.value.tokenId);
    step = await stream.next();
  }
  return { chunks, ids, result: step.value };
}

test("the chat template renders Llama-3 headers with BOS", () => {
  const text = model.requireTokenizer().applyChatTemplate(question.messages);
  assert.equal(text, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is the special magic number for lively-pencil-22?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
});

test("tokenizer ids of the golden prompt decode and re-encode consistently", () => {
  const tok = model.requireTokenizer();
  const ids = readGolden().chat_short_full.prompt_ids;
  const text = tok.decode(ids);
  assert.ok(text.startsWith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>"));
  assert.equal(tok.decode(tok.encode(text)), text);
});

test("streamed deltas add up to the final text, and greedy stops on end-of-turn", async () => {
  const { chunks, ids, result } = await collect(generate(model, question, { maxNewTokens: 64 }));
  assert.equal(chunks.join(""), result.text);
  assert.deepEqual(ids, result.tokenIds);
  assert.equal(result.finishReason, "eos");
  assert.ok(model.eosTokenIds.has(ids[ids.length - 1]));
  assert.match(result.text, /^The special magic number for lively-pencil-22 is: /);
});

test("max new tokens ends generation with finish reason length", async () => {
  const { result } = await collect(generate(model, question, { maxNewTokens: 3 }));
  assert.equal(result.tokenIds.length, 3);
  assert.equal(result.finishReason, "length");
});

test("a stop string ends generation before it and is never streamed", async () => {
  const { chunks, result } = await collect(generate(model, question, { maxNewTokens: 64, stop: ["magic"] }));
  assert.equal(result.finishReason, "stop");
  assert.equal(result.text, "The special ");
  assert.equal(chunks.join(""), "The special ");
});

test("seeded sampling reproduces; greedy is the temperature-0 limit", async () => {
  const opts = { maxNewTokens: 12, temperature: 1.2, topK: 40, topP: 0.95, seed: 5 };
  const a = await collect(generate(model, question, opts));
  const b = await collect(generate(model, question, opts));
  assert.deepEqual(a.ids, b.ids);
});

test("token ids out of range and over-long prompts are refused", async () => {
  await assert.rejects(collect(generate(model, [0, 99999])), /token id 99999 at index 1 is out of range/);
  await assert.rejects(collect(generate(model, [0, 1], { maxNewTokens: model.config.maxPositions })), /exceeds max_position_embeddings/);
});

test("concurrent generations on one model give what each gives alone (prompts of different lengths)", async () => {
  const long = { messages: [{ role: "user", content: `${"The grass is green. The sky is blue. ".repeat(60)}What is the special magic number for lively-pencil-22?` }] };
  const options = { maxNewTokens: 12 };
  const alone = [];
  for (const prompt of [question, long]) alone.push((await collect(generate(model, prompt, options))).ids);
  const together = await Promise.all([question, long, question].map(async (prompt) => (await collect(generate(model, prompt, options))).ids));
  assert.deepEqual(together, [alone[0], alone[1], alone[0]]);
  for (const [, { numFreePages, numUsablePages }] of model.checkKvInvariants()) assert.equal(numFreePages, numUsablePages);
});
