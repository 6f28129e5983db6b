/**
 * Task generators: cases fit the token budget, hold their answer, are
 * reproducible from the seed, and put needles at the requested depths.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chatFrame, frameAnswer, framePrompt } from "./chatFrame.js";
import { spliceInserts } from "./haystack.js";
import { needleSentence, niahTask } from "./niah.js";
import { parseTask } from "./tasks.js";
import type { TaskContext } from "./task.js";
import { createFolderSource } from "../platform/node/fileSource.js";
import { DEFAULT_MODEL_DIR, GOLDEN_FILE } from "../testing/fixtures.js";
import { HAYSTACK_FILE } from "../platform/node/haystack.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { createTaskContext, generateCase } from "./sweep.js";

const SPECS = ["niah:noise", "niah_multikey:uuids:noise", "niah_multivalue:words:noise", "niah_multiquery:noise", "vt", "cwe", "fwe", "kv"];

// The embedded model's tokenizer; unit tests use the noise haystack, never the large corpus.
let tokenizer: TextTokenizer;
let context: TaskContext;
before(async () => {
  tokenizer = await loadTokenizer(createFolderSource(DEFAULT_MODEL_DIR));
  context = createTaskContext(tokenizer, null);
});

describe("every task", () => {
  for (const spec of SPECS) {
    test(`${spec} fits 1024 and 2048 tokens, holds its answer and is reproducible`, () => {
      const task = parseTask(spec);
      for (const length of [1024, 2048]) {
        const c = generateCase(context, task, length, 7, 0);
        const total = c.promptIds.length + c.answerIds.length;
        assert.ok(total <= length, `${spec}@${length}: ${total} tokens`);
        assert.ok(c.promptIds.length >= 0.9 * length, `${spec}@${length}: prompt of ${c.promptIds.length} tokens`);
        const text = context.tokenizer.decode(c.promptIds);
        for (const value of c.expected) assert.ok(text.includes(value), `${spec}: "${value}" missing from the prompt`);
        assert.ok(text.startsWith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"));
        assert.ok(text.endsWith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
        assert.equal(c.answerIds[c.answerIds.length - 1], 4, "the answer ends with <|eot_id|>");
        assert.deepEqual(generateCase(context, task, length, 7, 0), c, "same seed, same case");
        assert.notDeepEqual(generateCase(context, task, length, 8, 0).promptIds, c.promptIds, "another seed differs");
        assert.notDeepEqual(generateCase(context, task, length, 7, 1).promptIds, c.promptIds, "another case differs");
      }
    });
  }
});

test("the chat frame encodes the header's blank line as one token, as the golden prompt does", () => {
  const frame = chatFrame(context.tokenizer);
  assert.deepEqual(frame.userPrefix, [0, 2, 2862, 3, 488]);
  assert.deepEqual(frame.assistantPrefix, [4, 2, 390, 400, 773, 3, 488]);
  assert.deepEqual(frame.endOfTurn, [4]);
});

test("needles are spliced as their own tokens and the needle text is in the prompt", () => {
  const c = generateCase(context, parseTask("niah_multikey:noise"), 1024, 3, 0);
  assert.equal(c.needleStarts.length, 4);
  const needle = context.tokenizer.encode(` ${c.answerText} `);
  const found = c.needleStarts.some((s) => needle.every((id, j) => c.promptIds[s + j] === id));
  assert.ok(found, "the asked needle's tokens start at one of needleStarts");
});

test("depths place the needle where asked", () => {
  for (const depth of [0, 0.1, 0.5, 0.9, 1]) {
    const task = niahTask("niah", { variant: "single", values: "numbers", haystack: "noise", depths: [depth] });
    const c = generateCase(context, task, 2048, 1, 0);
    const start = c.needleStarts[0];
    const haystackLength = c.promptIds.length - 5 - 7 - 20 - 16; // about: frame, needle, question
    assert.ok(Math.abs((start - 5) / haystackLength - depth) < 0.02, `depth ${depth}: needle at ${start}`);
    const text = context.tokenizer.decode(c.promptIds.slice(start, start + 24));
    assert.ok(text.startsWith(" The special magic number for "), text);
  }
});

test("multi-value answers list the values in the order of the text", () => {
  const task = niahTask("mv", { variant: "multivalue", values: "numbers", haystack: "noise", depths: [0.8, 0.2, 0.5, 0.1] });
  const c = generateCase(context, task, 1024, 5, 0);
  const text = context.tokenizer.decode(c.promptIds);
  const positions = c.expected.map((v) => text.indexOf(v));
  assert.deepEqual([...positions].sort((a, b) => a - b), positions);
});

test("spliceInserts keeps haystack order and reports where inserts start", () => {
  const { ids, starts } = spliceInserts([1, 2, 3, 4], [{ position: 4, ids: [9] }, { position: 1, ids: [7, 8] }, { position: 1, ids: [6] }]);
  assert.deepEqual(ids, [1, 7, 8, 6, 2, 3, 4, 9]);
  assert.deepEqual(starts, [7, 1, 3]);
});

test("the golden NIAH prompt is rebuilt token for token from its haystack and needles", () => {
  const golden = JSON.parse(readFileSync(GOLDEN_FILE, "utf8"));
  const frame = chatFrame(tokenizer);
  const ids: number[] = golden.niah1500_full.prompt_ids;
  const needles = [["quiet-apple-45", "1499914"], ["eager-harbor-27", "2571945"], ["quiet-piano-21", "4668136"], ["zany-forest-14", "4903402"]];
  const question = tokenizer.encode("\n\nWhat is the special magic number for quiet-apple-45?");
  const body = ids.slice(frame.userPrefix.length, ids.length - frame.assistantPrefix.length - question.length);
  // Take the needles out of the golden body; what is left is the haystack.
  const haystack: number[] = [];
  const inserts: { position: number; ids: number[] }[] = [];
  let from = 0;
  for (const [key, value] of needles) {
    const needle = tokenizer.encode(` ${needleSentence(key, value, "numbers")} `);
    let at = from;
    while (at < body.length && !needle.every((id, j) => body[at + j] === id)) at++;
    assert.ok(at < body.length, `needle ${key} found`);
    haystack.push(...body.slice(from, at));
    inserts.push({ position: haystack.length, ids: needle });
    from = at + needle.length;
  }
  haystack.push(...body.slice(from));
  const rebuilt = framePrompt(frame, [...spliceInserts(haystack, inserts).ids, ...question]);
  assert.deepEqual(rebuilt, ids);
  assert.deepEqual(frameAnswer(frame, tokenizer, needleSentence("quiet-apple-45", "1499914", "numbers")), golden.niah1500_answer_ids);
});

test("smoke: a corpus haystack from the start of the shipped haystack text", async () => {
  const { readTextPrefix } = await import("../platform/node/textFile.js");
  const corpus = await readTextPrefix(HAYSTACK_FILE, 200_000);
  const ctx = createTaskContext(tokenizer, corpus);
  const c = generateCase(ctx, parseTask("niah"), 2048, 0, 0);
  assert.ok(c.promptIds.length + c.answerIds.length <= 2048 && c.promptIds.length >= 0.9 * 2048);
  assert.ok(ctx.tokenizer.decode(c.promptIds).includes(c.answerText));
});
