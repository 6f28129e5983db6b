/**
 * @module kvcache/eviction.test
 *
 * SnapKV's host half: when a head is trimmed (more than budget + 16 global
 * tokens; the slack batches trims a page at a time) and which entries go,
 * from known score vectors: scores are max-pooled over neighbours in
 * position order (not index order), ties keep the earlier position, and
 * exactly `budget` entries stay.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { createRandom } from "../util/random.js";
import { noEviction, SNAPKV_OBSERVATION_WINDOW, SnapKvEviction } from "./eviction.js";

test("none never evicts and needs no observation queries", () => {
  assert.equal(noEviction.shouldEvict(1e9), false);
  assert.deepEqual(noEviction.chooseDrops([1, 2], [0, 1]), []);
  assert.equal(noEviction.observationWindow, 0);
  assert.equal(noEviction.name, "none");
});

test("snapkv trims a head once it holds more than budget + 16 global tokens", () => {
  const snap = new SnapKvEviction(100);
  assert.equal(snap.slack, 16);
  assert.equal(snap.observationWindow, SNAPKV_OBSERVATION_WINDOW);
  assert.equal(SNAPKV_OBSERVATION_WINDOW, 16);
  assert.deepEqual([0, 100, 116, 117, 500].map((n) => snap.shouldEvict(n)), [false, false, false, true, true]);
  for (const bad of [0, -4, 2.5, NaN]) {
    assert.throws(() => new SnapKvEviction(bad), (err: unknown) => err instanceof InvalidInputError && err.message === `eviction snapkv budget must be a positive integer, got ${bad}`);
  }
});

test("at or under the budget nothing is dropped", () => {
  const snap = new SnapKvEviction(3);
  assert.deepEqual(snap.chooseDrops([0.1, 0.2, 0.3], [0, 1, 2]), []);
  assert.deepEqual(snap.chooseDrops([], []), []);
});

test("pooling keeps a spike's neighbours over a lone mid score (kernel 3, known answer)", () => {
  const snap = new SnapKvEviction(3, { poolKernel: 3 });
  // raw top 3 would be 1, 4, 2; pooled over neighbours: 0, 1, 2 share the spike's 0.9
  assert.deepEqual(snap.chooseDrops([0.1, 0.9, 0.2, 0.05, 0.3, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6, 7]), [3, 4, 5, 6, 7]);
});

test("neighbours are by position, not by index in the global list (eviction reorders it)", () => {
  const snap = new SnapKvEviction(2, { poolKernel: 3 });
  // position order: i0 (0), i2 (1), i4 (2), i1 (100), i3 (101); pooled: i0 .9, i2 .9, i4 .1, i1 .2, i3 .2
  assert.deepEqual(snap.chooseDrops([0.9, 0.1, 0, 0.2, 0.05], [0, 100, 1, 101, 2]), [1, 3, 4]);
  // the same scores in index order would keep i0 and i1 instead
  assert.deepEqual(snap.chooseDrops([0.9, 0.1, 0, 0.2, 0.05], [0, 1, 2, 3, 4]), [2, 3, 4]);
});

test("the default pooling kernel is 7", () => {
  const scores = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0.5];
  const positions = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  // half-width 3: 0..3 pool to 1, 6..9 to 0.5, 4 and 5 to 0
  assert.deepEqual(new SnapKvEviction(5).chooseDrops(scores, positions), [4, 5, 7, 8, 9]);
  assert.deepEqual(new SnapKvEviction(5, { poolKernel: 5 }).chooseDrops(scores, positions), [3, 4, 5, 6, 9]);
});

test("ties keep the earlier positions", () => {
  const snap = new SnapKvEviction(2, { poolKernel: 1 });
  assert.deepEqual(snap.chooseDrops([0.5, 0.5, 0.5, 0.5], [5, 3, 9, 1]), [0, 2]);
  assert.deepEqual(snap.chooseDrops([0.2, 0.7, 0.2, 0.2], [5, 3, 9, 1]), [0, 2]); // 0.7 first, then position 1
});

test("exactly budget entries stay: drops are distinct, sorted, in range (random scores)", () => {
  const random = createRandom(42);
  for (let trial = 0; trial < 50; trial++) {
    const n = 1 + Math.floor(random() * 200);
    const budget = 1 + Math.floor(random() * 150);
    const positions = Array.from({ length: n }, (_, i) => 3 * i).sort(() => random() - 0.5);
    const scores = Array.from({ length: n }, () => (random() < 0.3 ? 0 : random()));
    const drops = new SnapKvEviction(budget).chooseDrops(Float32Array.from(scores), Int32Array.from(positions));
    assert.equal(drops.length, Math.max(0, n - budget));
    assert.deepEqual(drops, [...new Set(drops)].sort((a, b) => a - b));
    assert.ok(drops.every((i) => Number.isInteger(i) && i >= 0 && i < n));
  }
});
