/**
 * The runner on the embedded model: teacher forcing through prefill agrees
 * with greedy decoding, and the KV figures follow the policy.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { loadModel, type Model } from "../index.js";
import { niahTask } from "./niah.js";
import { admittedFraction, evaluateCase } from "./runner.js";
import { createTaskContext, generateCase } from "./sweep.js";
import type { TaskCase } from "./task.js";

let model: Model;
let testCase: TaskCase;
before(async () => {
  model = await loadModel(undefined, { threads: 2 });
  const context = createTaskContext(model.requireTokenizer(), null);
  const task = niahTask("niah", { variant: "single", values: "numbers", haystack: "noise", depths: [0.3] });
  testCase = generateCase(context, task, 384, 0, 0);
});
after(() => model?.dispose());

test("full attention: teacher forcing and greedy decoding agree on a short needle prompt", async () => {
  const r = await evaluateCase(model, testCase, {}, { greedy: "all", extraTokens: 4 });
  assert.equal(r.teacherForced, true, `the model finds a needle 250 tokens back (first miss at answer token ${r.correctPrefix})`);
  assert.equal(r.greedyText, testCase.answerText);
  assert.equal(r.greedyScore, 1);
  assert.equal(r.admittedFraction, 1);
  assert.equal(r.numPromptTokens, testCase.promptIds.length);
  assert.ok(r.residentBytes >= r.fullAttentionBytes);
  const stats = model.engine.stats();
  assert.equal(stats.numFreePages, stats.numUsablePages, "every page is released");
});

test("local attention with a 64-token window admits nothing and holds only the window", async () => {
  const r = await evaluateCase(model, testCase, { window: 64, admission: "local" }, { greedy: "off" });
  assert.equal(r.admittedFraction, 0);
  assert.equal(r.greedyText, null);
  assert.equal(r.greedyScore, null);
  assert.ok(r.residentBytes < r.fullAttentionBytes / 4, `${r.residentBytes} of ${r.fullAttentionBytes} bytes`);
});

test("admittedFraction counts admitted entries over layers, heads and tokens", () => {
  const report = { admittedByHead: [[10, 0], [5, 5]], numTokens: 10 } as Parameters<typeof admittedFraction>[0];
  assert.equal(admittedFraction(report), 0.5);
});
