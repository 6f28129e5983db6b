/**
 * min-p in the CPU backend's sampler: ids less likely than min_p times the
 * most likely one (on the tempered distribution) are never drawn; 0 keeps all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { sampleRow } from "./sampleRow.js";

// probabilities at temperature 1 relative to the best (id 1): id 4 0.90, id 2 0.61, id 0 0.15, id 5 0.14, id 3 0.05
const logits = Float32Array.from([0.1, 2.0, 1.5, -1, 1.9, 0]);
const draws = (minP: number, temperature = 1) => new Set(Array.from({ length: 400 }, (_, i) => sampleRow(logits, temperature, 0, 1, (i + 0.5) / 400, minP)));

test("min_p keeps the ids at least min_p times as likely as the best", () => {
  assert.deepEqual([...draws(0.5)].sort(), [1, 2, 4]);
  assert.deepEqual([...draws(0.7)].sort(), [1, 4]);
  assert.deepEqual([...draws(0.95)].sort(), [1]);
});

test("min_p 0 keeps every id; min_p applies after temperature", () => {
  assert.deepEqual([...draws(0)].sort(), [0, 1, 2, 3, 4, 5]);
  // at temperature 0.25 id 2 is e^(-0.5 / 0.25) = 0.14 of the best: cut at 0.5
  assert.deepEqual([...draws(0.5, 0.25)].sort(), [1, 4]);
});
