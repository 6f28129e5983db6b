/**
 * Page pools under sequences that live at the same time: each reserves its
 * worst case when created, a sequence that fits no pool gets a new one, and
 * released reservations are reused.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { loadModel, type Model } from "../index.js";
import type { KvSettings } from "./kvSettings.js";

let model: Model;
before(async () => {
  model = await loadModel(undefined, { threads: 1 });
});
after(() => model.dispose());

// bf16 pages: pools of their own, untouched by other tests of this model
const settings: Partial<KvSettings> = { kvDType: "bf16", window: 16 };
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 10 + ((i * 7919 + seed) % 5000));
const pages = () => model.checkKvInvariants().get("bf16")!;

test("a longer sequence arriving while a short one lives gets room, and both run to their capacity", async () => {
  const short = model.createSequence(48, settings);
  await model.prefill(ids(40, 1), short);
  const poolBefore = pages().numUsablePages;
  const long = model.createSequence(700, settings); // needs more than the short one's pool holds
  assert.ok(pages().numUsablePages > poolBefore);
  await model.prefill(ids(690, 2), long);
  for (let i = 0; i < 8; i++) {
    await model.step(100 + i, short);
    await model.step(200 + i, long);
  }
  assert.equal(short.numTokens, 48);
  assert.equal(long.numTokens, 698);
  pages(); // throws if a pool holds more than its sequences reserved
  short.release();
  long.release();
  const { numFreePages, numUsablePages } = pages();
  assert.equal(numFreePages, numUsablePages);

  // released reservations are reused: the same two sequences again need no new pool
  const again = [model.createSequence(48, settings), model.createSequence(700, settings)];
  assert.equal(pages().numUsablePages, numUsablePages);
  for (const kv of again) kv.release();
});

test("release is idempotent (the reservation is returned once) and a released sequence refuses work", async () => {
  const a = model.createSequence(700, settings);
  const reserved = model.createSequence(700, settings);
  const usable = pages().numUsablePages;
  a.release();
  a.release();
  // had the second release returned the reservation again, three more would fit without a new pool
  const more = [model.createSequence(700, settings), model.createSequence(700, settings)];
  assert.ok(pages().numUsablePages > usable, "a second 700-token sequence beside the live ones needs a new pool");
  await assert.rejects(model.step(5, a), /used after release/);
  for (const kv of [reserved, ...more]) kv.release();
});
