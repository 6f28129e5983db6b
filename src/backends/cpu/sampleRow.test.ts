/**
 * sampleRow (the CPU sample op and the reference of every backend's) on
 * its own: greedy ties, NaN rows, top-k cut at tied logits, and the
 * distribution of many draws against the renormalised nucleus computed
 * independently (backends/conformance/sampling.ts's nucleusOf).
 *
 * Mutants checked to fail this file and the conformance suite's sample
 * tests (each applied to sampleRow.ts, run, reverted):
 * - `let r = u * kept` -> `u * total` (draws over the whole mass, not the
 *   renormalised nucleus: the last kept id takes the rest);
 * - `exp((logit - max) / temperature)` -> `exp(logit - max)` (temperature ignored);
 * - `keep = i + 1` -> `i + 2` and -> `max(1, i)` (one id too many or too few);
 * - the top-k cut skipped; argmax's `>` -> `>=` (the last of equal maxima).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chiSquareCritical, nucleusOf } from "../conformance/sampling.js";
import { TestRandom } from "../conformance/testData.js";
import { argmax, hasNaN, sampleRow } from "./sampleRow.js";

const logits = Float32Array.from([0.1, 2.0, 1.5, -1, 1.9, 0, 2.0, 0.4]);

test("temperature 0 is greedy: the first of equal maxima, whatever u", () => {
  for (const u of [0, 0.5, 0.999]) assert.equal(sampleRow(logits, 0, 0, 1, u), 1);
  assert.equal(argmax(Float32Array.from([-Infinity, -Infinity])), 0);
  assert.equal(argmax(Float32Array.from([9, 1, 3, 2]), 1, 3), 1);
});

test("hasNaN finds a NaN anywhere in the row, and only a NaN", () => {
  assert.equal(hasNaN([1, 2, 3]), false);
  assert.equal(hasNaN([Infinity, -Infinity]), false);
  assert.equal(hasNaN([1, NaN, 3]), true);
  assert.equal(hasNaN([NaN]), true);
});

test("top-k 1 is the argmax; top-k cuts tied logits by id", () => {
  for (let i = 0; i < 50; i++) assert.equal(sampleRow(logits, 3, 1, 1, i / 50), 1);
  const tied = Float32Array.from([1, 3, 3, 3, 5]);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(sampleRow(tied, 10, 3, 1, (i + 0.5) / 200));
  assert.deepEqual([...seen].sort(), [1, 2, 4], "of the three ids tied at 3, the two lowest make the top 3");
});

test("u near 1 picks the last kept id, u = 0 the first", () => {
  const n = nucleusOf(logits, [1, 4, 0.7]);
  assert.equal(sampleRow(logits, 1, 4, 0.7, 0), n.ids[0]);
  assert.equal(sampleRow(logits, 1, 4, 0.7, 1 - 2 ** -30), n.ids[n.ids.length - 1]);
});

test("many draws follow the renormalised top-k / top-p / temperature distribution (stratified within 1 count, random by chi-square)", () => {
  const random = new TestRandom(800);
  const N = 20000;
  for (const sampling of [[0.5, 0, 1], [1, 4, 0.7], [2, 0, 0.9], [1.3, 6, 0.95], [0.8, 0, 0.5]] as const) {
    const n = nucleusOf(logits, sampling);
    const stratified = new Array<number>(logits.length).fill(0);
    const drawn = new Array<number>(logits.length).fill(0);
    for (let i = 0; i < N; i++) {
      const [t, k, p] = sampling;
      stratified[sampleRow(logits, t, k, p, (i + 0.5) / N)]++;
      drawn[sampleRow(logits, t, k, p, random.next())]++;
    }
    const what = `[T, k, p] = [${sampling}]`;
    n.ids.forEach((id, i) => assert.ok(Math.abs(stratified[id] - N * n.probs[i]) <= 1.001, `${what}: id ${id} ${stratified[id]} times, expected ${N * n.probs[i]}`));
    for (let id = 0; id < logits.length; id++) if (!n.ids.includes(id)) assert.equal(drawn[id], 0, `${what}: id ${id} is outside the nucleus`);
    const chi2 = n.ids.reduce((acc, id, i) => acc + (drawn[id] - N * n.probs[i]) ** 2 / (N * n.probs[i]), 0);
    if (n.ids.length > 1) assert.ok(chi2 < chiSquareCritical(n.ids.length - 1), `${what}: chi-square ${chi2}`);
  }
});
