/**
 * Training samples on the default model's tokenizer: exact lengths, the chat
 * frame and instruction around text, needle cases with their answer, the
 * mix, determinism per (seed, step, index), and the one-line error for text
 * too short for the length.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chatFrame } from "../eval/chatFrame.js";
import { createFolderSource } from "../platform/node/fileSource.js";
import { DEFAULT_MODEL_DIR, PROJECT_ROOT } from "../testing/fixtures.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { InvalidInputError } from "../errors.js";
import { SUMMARIZE_PROMPT, TrainData } from "./trainData.js";
import { readTextPrefix } from "../platform/node/textFile.js";

let tokenizer: TextTokenizer;
let text = "";
before(async () => {
  tokenizer = await loadTokenizer(createFolderSource(DEFAULT_MODEL_DIR));
  text = await readTextPrefix(join(PROJECT_ROOT, "data/haystack.txt.br"), 1 << 20);
});

test("text samples: one chat turn of exactly --length tokens, the instruction first", () => {
  const data = new TrainData(tokenizer, text, { length: 300, needleMix: 0, seed: 1, dataName: "haystack" });
  const frame = chatFrame(tokenizer);
  const prompt = tokenizer.encode(SUMMARIZE_PROMPT);
  for (let i = 0; i < 4; i++) {
    const s = data.sample(7, i);
    assert.equal(s.kind, "text");
    assert.equal(s.ids.length, 300);
    const ids = Array.from(s.ids);
    assert.deepEqual(ids.slice(0, frame.userPrefix.length + prompt.length), [...frame.userPrefix, ...prompt]);
    assert.deepEqual(ids.slice(-frame.assistantPrefix.length), [...frame.assistantPrefix]);
  }
  assert.deepEqual(data.sample(7, 1).ids, data.sample(7, 1).ids, "the same (step, index) gives the same sample");
  assert.notDeepEqual(data.sample(7, 1).ids, data.sample(8, 1).ids);
});

test("needle samples: an eval needle case and its answer, --length tokens; the mix follows --needle-mix", () => {
  const all = new TrainData(tokenizer, text, { length: 400, needleMix: 1, seed: 2, dataName: "haystack" });
  const s = all.sample(0, 0);
  assert.equal(s.kind, "needle");
  assert.equal(s.ids.length, 400);
  assert.match(tokenizer.decode(Array.from(s.ids)), /special magic number/);
  const half = new TrainData(tokenizer, text, { length: 400, needleMix: 0.5, seed: 3, dataName: "haystack" });
  const kinds = Array.from({ length: 40 }, (_, i) => half.sample(i, 0).kind);
  const needles = kinds.filter((k) => k === "needle").length;
  assert.ok(needles > 10 && needles < 30, `${needles} of 40 needle samples at mix 0.5`);
  assert.deepEqual(half.heldOut(2).map((x) => x.kind), ["text", "needle"]);
});

test("text too short for --length: a one-line error naming --data", () => {
  const short = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8").slice(0, 2000);
  assert.throws(() => new TrainData(tokenizer, short, { length: 4096, needleMix: 0, seed: 0, dataName: "notes.txt" }), (err: Error) => {
    assert.ok(err instanceof InvalidInputError);
    assert.match(err.message, /^--data notes\.txt: the text holds about \d+ tokens, fewer than the \d+ of text that --length 4096 needs per sample$/);
    return true;
  });
});

test("--position-range places samples at seeded positions below it; by default they start at 0", () => {
  const placed = new TrainData(tokenizer, text, { length: 300, needleMix: 0.5, positionRange: 1000, seed: 4, dataName: "haystack" });
  const offsets = Array.from({ length: 20 }, (_, i) => placed.sample(i, 0).positionOffset);
  assert.ok(offsets.every((o) => Number.isInteger(o) && o >= 0 && o <= 700), String(offsets));
  assert.ok(new Set(offsets).size > 10);
  assert.equal(placed.sample(3, 1).positionOffset, placed.sample(3, 1).positionOffset);
  const plain = new TrainData(tokenizer, text, { length: 300, needleMix: 0.5, seed: 4, dataName: "haystack" });
  assert.ok(Array.from({ length: 10 }, (_, i) => plain.sample(i, 0).positionOffset).every((o) => o === 0));
});
