/**
 * A sliding-window model (config.json sliding_window, as Mistral v0.1 has)
 * runs as it was trained: by default its requests attend to its last
 * `sliding_window` tokens (local admission, that window), and policies that
 * would show it older tokens are refused. The mistral fixture with a span of
 * 16 over its 48-token prompt: the window binds, so full attention differs.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidInputError } from "../errors.js";
import { loadModel, type Model } from "../index.js";
import { copyModel } from "../testing/cli.js";
import { runPrompt } from "../testing/engineRun.js";
import { archDir, readJson, type ArchReference } from "../testing/fixtures.js";

const SPAN = 16;
const ref = readJson<ArchReference>(join(archDir("mistral"), "reference.json"));
let tmp: string;
let sliding: Model;
let plain: Model;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-sliding-"));
  const dir = copyModel(archDir("mistral"), join(tmp, "mistral-sliding"), (d) => {
    const config = JSON.parse(readFileSync(join(d, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(d, "config.json"), JSON.stringify({ ...config, sliding_window: SPAN }));
  });
  [sliding, plain] = [await loadModel(dir, { ropeFreqDType: "bf16" }), await loadModel(archDir("mistral"), { ropeFreqDType: "bf16" })];
});

after(() => {
  sliding?.dispose();
  plain?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

test("by default a sliding-window model attends within its span: the same logits as local admission with that window", async () => {
  assert.equal(sliding.config.slidingWindow, SPAN);
  const own = await runPrompt(sliding, ref.input_ids, { maxNewTokens: 8 });
  const local = await runPrompt(plain, ref.input_ids, { maxNewTokens: 8, kv: { admission: "local", window: SPAN } });
  assert.deepEqual(own.logits, local.logits);
  assert.deepEqual(own.result.tokenIds, local.result.tokenIds);
  // the span binds on this prompt: full attention answers otherwise
  const full = await runPrompt(plain, ref.input_ids);
  assert.notDeepEqual(own.argmax.slice(0, ref.input_ids.length), full.argmax);
  assert.deepEqual(full.argmax, ref.argmax);
});

test("policies that would show the model tokens past its span are refused, naming the option and config.json", async () => {
  const refused = (kv: object, pattern: RegExp) =>
    assert.rejects(runPrompt(sliding, ref.input_ids, { kv }), (e: unknown) => e instanceof InvalidInputError && pattern.test(e.message) && !e.message.includes("\n"));
  await refused({ admission: "full" }, /^kv\.admission full: the model attends only to its last 16 tokens \(config\.json sliding_window\); only local admission keeps its answers$/);
  await refused({ admission: "random:0.2" }, /^kv\.admission random:0\.2: the model attends only to its last 16 tokens/);
  await refused({ admission: "local", window: 32 }, /^kv\.window 32: the model attends only to its last 16 tokens \(config\.json sliding_window\); use a window of at most 16$/);
  // a local window within the span is accepted
  const shorter = await runPrompt(sliding, ref.input_ids, { kv: { admission: "local", window: 16 } });
  assert.equal(shorter.argmax.length, ref.input_ids.length);
});
