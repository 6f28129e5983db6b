/**
 * Scoring: RULER string match on hand-made answers, and teacher-forced exact
 * match on hand-made logits.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { argmax, stringMatchAll, stringMatchPart, TeacherForcing } from "./scoring.js";

test("string match all: the share of expected values found, case-insensitively", () => {
  assert.equal(stringMatchAll("The special magic number for quiet-apple-45 is: 1499914.", ["1499914"]), 1);
  assert.equal(stringMatchAll("The special magic number for quiet-apple-45 is: 14080514.", ["1499914"]), 0);
  assert.equal(stringMatchAll("values: 11, 22", ["11", "22", "33", "44"]), 0.5);
  assert.equal(stringMatchAll("The words are: APPLE, Piano", ["apple", "piano"]), 1);
  assert.equal(stringMatchAll("anything", []), 0);
});

test("string match part: one point when any expected value is found", () => {
  assert.equal(stringMatchPart("it is 22", ["11", "22"]), 1);
  assert.equal(stringMatchPart("it is 33", ["11", "22"]), 0);
});

test("argmax takes the first of equal maxima, within a row", () => {
  assert.equal(argmax(Float32Array.of(1, 3, 3, 2)), 1);
  assert.equal(argmax(Float32Array.of(9, 9, 0, 5, 1, 5), 2, 4), 1);
});

/** Logits [numTokens, vocab] whose argmax at row t is `ids[t]`. */
function logitsFor(ids: readonly number[], vocab: number): Float32Array {
  const out = new Float32Array(ids.length * vocab);
  ids.forEach((id, t) => (out[t * vocab + id] = 1));
  return out;
}

test("teacher forcing checks position p's argmax against token p + 1 of the answer", () => {
  const vocab = 8;
  // prompt of 3 tokens (positions 0..2), answer [5, 6, 7] at positions 3..5
  const forcing = new TeacherForcing(3, [5, 6, 7], vocab);
  // last prompt position predicts the first answer token
  forcing.addRow(logitsFor([5], vocab), 0, 2);
  // answer positions 3 and 4 predict answer tokens 1 and 2; rows outside the answer are ignored
  forcing.addLogits(logitsFor([6, 7, 0], vocab), 3, 3);
  assert.deepEqual(forcing.predicted, [5, 6, 7]);
  assert.equal(forcing.isExactMatch, true);
  assert.equal(forcing.numCorrectPrefix, 3);
});

test("teacher forcing fails on any wrong token and reports the matching prefix", () => {
  const forcing = new TeacherForcing(2, [1, 2, 3], 4);
  forcing.addLogits(logitsFor([0, 1, 2, 0], 4), 0, 4); // positions 0..3: predictions for answer tokens 0..2 are 1, 2, 0
  assert.deepEqual(forcing.predicted, [1, 2, 0]);
  assert.equal(forcing.isExactMatch, false);
  assert.equal(forcing.numCorrectPrefix, 2);
  const unseen = new TeacherForcing(2, [1, 2], 4);
  assert.equal(unseen.isExactMatch, false, "positions never seen do not count as matches");
});
