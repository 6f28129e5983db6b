/**
 * @module backends/conformance/sampling
 *
 * The sample op (stepLayout.ts SAMPLE_*; cpu/sampleRow.ts documents the
 * rule): greedy is the argmax, the first of equal maxima; a row holding a NaN
 * gives -1; otherwise the candidates are the ids by logit (descending, ties
 * by id), cut to the top k, weighted e^((l - max) / T), cut to the shortest
 * head whose share of the candidates' mass reaches p, renormalised, and the
 * row's uniform draw u picks by inverse CDF. min_p > 0 first drops the
 * candidates whose weight is below min_p times the largest (at least one
 * stays), before top-p.
 *
 * The expected ids and distributions are computed here from that definition
 * in f64 (nucleusOf). Ids are compared exactly, except for draws within
 * 1e-9 of a CDF step (a backend summing in f32 may fall on either side).
 * The distribution test counts what many draws pick: with stratified draws
 * u = (i + 1/2) / N every count is within 1 of N p; with seeded random draws
 * a chi-square test at the 0.1% level holds, and ids outside the nucleus
 * never appear. Sampling from the whole mass instead of the renormalised
 * nucleus, ignoring the temperature, or keeping one id too many or too few
 * fails it (checked by mutating sampleRow.ts; see cpu/sampleRow.test.ts).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SAMPLE_FIELDS, SAMPLE_MIN_P, SAMPLE_ROW, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, SAMPLE_TOP_P, SAMPLE_UNIFORM } from "../stepLayout.js";
import { destroyAll, f32Tensor, i32Tensor, readI32, type ConformanceContext } from "./context.js";
import { TestRandom } from "./testData.js";

/** [temperature, topK, topP, minP?] */
type Sampling = readonly [number, number, number, number?];

/** The renormalised distribution the rule samples from: kept ids in candidate order, their probabilities. */
export function nucleusOf(logits: ArrayLike<number>, [temperature, topK, topP, minP = 0]: Sampling): { ids: number[]; probs: number[] } {
  let ids = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (topK > 0) ids = ids.slice(0, topK);
  let weights = ids.map((i) => Math.exp((logits[i] - logits[ids[0]]) / temperature));
  const aboveMinP = weights.filter((w) => w >= minP).length;
  [ids, weights] = [ids.slice(0, Math.max(1, aboveMinP)), weights.slice(0, Math.max(1, aboveMinP))];
  const total = weights.reduce((a, w) => a + w, 0);
  let keep = ids.length;
  for (let i = 0, mass = 0; i < ids.length && topP < 1; i++) {
    mass += weights[i] / total;
    if (mass >= topP) {
      keep = i + 1;
      break;
    }
  }
  const kept = weights.slice(0, keep).reduce((a, w) => a + w, 0);
  return { ids: ids.slice(0, keep), probs: weights.slice(0, keep).map((w) => w / kept) };
}

/** The id a draw u picks by inverse CDF, or null when u is within `margin` of a step. */
function pick(n: { ids: number[]; probs: number[] }, u: number, margin: number): number | null {
  let cdf = 0;
  for (let i = 0; i < n.ids.length; i++) {
    const next = cdf + n.probs[i];
    if (Math.abs(u - next) < margin && i < n.ids.length - 1) return null;
    if (u < next) return n.ids[i];
    cdf = next;
  }
  return n.ids[n.ids.length - 1];
}

/** The chi-square statistic's 99.9% quantile for `df` degrees of freedom (Wilson–Hilferty). */
export function chiSquareCritical(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

const LOGITS = [
  [0.3, 2.0, 1.5, -1, 1.9, 0, 2.0, -3, 0.7, 1.1], // two ids tie at the top
  [1.2, -0.4, 0.9, 3.1, 0.2, -2.2, 2.5, 0.8, -0.1, 1.7],
];
const SAMPLINGS: readonly Sampling[] = [[0.7, 5, 0.8], [1.5, 0, 0.9], [1, 3, 1], [2, 0, 1], [0.4, 0, 0.95], [1, 1, 1], [1, 0, 1, 0.2], [1.5, 6, 0.9, 0.3], [0.5, 0, 1, 0.999]];

/** One row of sampleOnce's parameters. */
function ask(row: number, [temperature, topK, topP, minP = 0]: Sampling, u: number): number[] {
  return [row, temperature, topK, topP, u, minP];
}

export function describeSampling(ctx: ConformanceContext): void {
  describe("sample", () => {
    test("greedy is the argmax (first of equal maxima, -inf allowed); a row holding a NaN gives -1 at any temperature", async () => {
      const V = 6;
      const rows = [[0.5, 3, -1, 3, 2, 0], [1, 2, NaN, 0, 0, 0], [-Infinity, -Infinity, -5, -7, -5, -Infinity], [4, 4, 4, 4, 4, 4]];
      // [row, temperature, u]: rows out of order and repeated
      const asks = [[2, 0, 0.5], [0, 0, 0.99], [1, 0, 0.1], [1, 1, 0.1], [3, 0, 0.7], [0, 0, 0]];
      const ids = await sampleOnce(ctx, rows.flat(), V, asks.map(([row, t, u]) => ask(row, [t, 0, 1], u)));
      assert.deepEqual(Array.from(ids), [2, 1, -1, -1, 0, 1]);
    });

    test("temperature, top-k and top-p: each draw picks the id the inverse CDF of the renormalised nucleus gives", async () => {
      const random = new TestRandom(700);
      const V = LOGITS[0].length;
      for (const sampling of SAMPLINGS) {
        for (let row = 0; row < LOGITS.length; row++) {
          const n = nucleusOf(LOGITS[row], sampling);
          const us = Array.from({ length: 300 }, () => random.next());
          const ids = await sampleOnce(ctx, LOGITS.flat(), V, us.map((u) => ask(row, sampling, u)));
          us.forEach((u, i) => {
            const want = pick(n, Math.fround(u), 1e-9);
            if (want !== null) assert.equal(ids[i], want, `row ${row}, sampling ${sampling}, u = ${u}`);
          });
        }
      }
    });

    test("distribution: many draws follow the renormalised top-k / top-p / temperature distribution", async () => {
      const random = new TestRandom(701);
      const V = LOGITS[0].length, N = 4000;
      for (const sampling of SAMPLINGS) {
        for (let row = 0; row < LOGITS.length; row++) {
          const n = nucleusOf(LOGITS[row], sampling);
          const what = `row ${row}, [T, k, p, min_p] = [${sampling}]`;
          // stratified draws: every count within 1 of N p
          const stratified = counts(await sampleOnce(ctx, LOGITS.flat(), V, Array.from({ length: N }, (_, i) => ask(row, sampling, (i + 0.5) / N))), V);
          n.ids.forEach((id, i) => assert.ok(Math.abs(stratified[id] - N * n.probs[i]) <= 1.001, `${what}: id ${id} drawn ${stratified[id]} times of ${N}, expected ${N * n.probs[i]}`));
          // random draws: chi-square at the 0.1% level, nothing outside the nucleus
          const drawn = counts(await sampleOnce(ctx, LOGITS.flat(), V, Array.from({ length: N }, () => ask(row, sampling, random.next()))), V);
          for (let id = 0; id < V; id++) if (!n.ids.includes(id)) assert.equal(drawn[id], 0, `${what}: id ${id} is outside the nucleus`);
          if (n.ids.length > 1) {
            const chi2 = n.ids.reduce((acc, id, i) => acc + (drawn[id] - N * n.probs[i]) ** 2 / (N * n.probs[i]), 0);
            assert.ok(chi2 < chiSquareCritical(n.ids.length - 1), `${what}: chi-square ${chi2.toFixed(1)} >= ${chiSquareCritical(n.ids.length - 1).toFixed(1)}`);
          }
        }
      }
    });
  });
}

/** One sample call: params rows [row, T, k, p, u, minP] (ask); returns the ids. */
async function sampleOnce(ctx: ConformanceContext, logits: readonly number[], V: number, params: readonly (readonly number[])[]): Promise<Int32Array> {
  const b = ctx.backend;
  const flat = new Float32Array(params.length * SAMPLE_FIELDS);
  params.forEach(([row, t, k, p, u, minP], i) => {
    const at = i * SAMPLE_FIELDS;
    [flat[at + SAMPLE_ROW], flat[at + SAMPLE_TEMPERATURE], flat[at + SAMPLE_TOP_K], flat[at + SAMPLE_TOP_P], flat[at + SAMPLE_UNIFORM], flat[at + SAMPLE_MIN_P]] = [row, t, k, p, u, minP];
  });
  // NOTE: u is an f32 on the device: the draws above are rounded alike by Float32Array
  const tensors = [f32Tensor(b, [logits.length / V, V], logits, "logits"), f32Tensor(b, [params.length, SAMPLE_FIELDS], flat, "sampling parameters"), i32Tensor(b, [params.length + 1], new Int32Array(params.length + 1).fill(-9), "ids")];
  b.sample(tensors[2], tensors[0], tensors[1], params.length);
  const ids = await readI32(b, tensors[2]);
  destroyAll(b, tensors);
  assert.equal(ids[params.length], -9, "sample wrote past its rows");
  return ids.subarray(0, params.length);
}

function counts(ids: Int32Array, V: number): number[] {
  const out = new Array<number>(V).fill(0);
  for (const id of ids) out[id]++;
  return out;
}
