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

/** Reads a stream with next() to its final value (the result), as the CLI once did. */
async function collect(stream: ReturnType<typeof generate>) {
  const chunks: string[] = [];
  const ids: number[] = [];
  let step = await stream.next();
  while (!step.done) {
    chunks.push(step.value.text);
    if (step.value.tokenId >= 0) ids.push(step.value.tokenId);
    step = await stream.next();
  }
  assert.deepEqual(step.value, await stream.result, "next()'s final value is the result");
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

test("seeded sampling reproduces, also when run beside other sequences; the seed and temperature matter", async () => {
  // NOTE: an open prompt: the chat question's answer is nearly certain at any temperature
  const prompt = "Once upon a time";
  const opts = { maxNewTokens: 12, temperature: 1.2, topK: 40, topP: 0.95, seed: 5 };
  const a = await collect(generate(model, prompt, opts));
  const [b, c] = await Promise.all([collect(generate(model, prompt, opts)), collect(generate(model, prompt, { ...opts, seed: 6 }))]);
  assert.deepEqual(a.ids, b.ids);
  assert.notDeepEqual(a.ids, c.ids, "another seed samples other tokens");
  // a very low temperature is the greedy answer whatever the seed
  const greedy = await collect(generate(model, prompt, { maxNewTokens: 12 }));
  const cold = await collect(generate(model, prompt, { maxNewTokens: 12, temperature: 1e-4, seed: 9 }));
  assert.deepEqual(cold.ids, greedy.ids);
  assert.notDeepEqual(a.ids, greedy.ids, "temperature 1.2 leaves the greedy path");
});

test("token ids out of range and over-long prompts are refused", async () => {
  await assert.rejects(collect(generate(model, [0, 99999])), /token id 99999 at index 1 is out of range/);
  await assert.rejects(collect(generate(model, [0, 1], { maxNewTokens: model.config.maxPositions })), /exceeds the context of 32768 tokens/);
});

test("concurrent generations on one model give what each gives alone (prompts of different lengths)", async () => {
  const long = { messages: [{ role: "user", content: `${"The grass is green. The sky is blue. ".repeat(60)}What is the special magic number for lively-pencil-22?` }] };
  const options = { maxNewTokens: 12 };
  const alone = [];
  for (const prompt of [question, long]) alone.push((await collect(generate(model, prompt, options))).ids);
  const together = await Promise.all([question, long, question].map(async (prompt) => (await collect(generate(model, prompt, options))).ids));
  assert.deepEqual(together, [alone[0], alone[1], alone[0]]);
  const stats = model.engine.stats();
  assert.equal(stats.numFreePages, stats.numUsablePages);
});
