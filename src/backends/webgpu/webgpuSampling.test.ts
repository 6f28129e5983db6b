/**
 * The parallel sampling kernel (kernels/sampleKernels.ts), which rows of
 * real vocabularies take, on small rows where the conformance suite's
 * sequential path would otherwise serve: greedy, NaN, and draws against the
 * renormalised nucleus (conformance/sampling.ts's definition), with ties.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Backend } from "../backend.js";
import { nucleusOf } from "../conformance/sampling.js";
import { TestRandom } from "../conformance/testData.js";
import { SAMPLE_FIELDS } from "../stepLayout.js";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";

let b: Backend;
before(async () => {
  b = await createNodeWebGpuBackend({ largeVocabSampling: true });
});
after(() => b.dispose());

async function sample(logits: number[], rows: number[][]): Promise<Int32Array> {
  const V = logits.length;
  const l = b.createTensor([1, V], "f32", "logits");
  b.write(l, Float32Array.from(logits));
  const p = b.createTensor([rows.length, SAMPLE_FIELDS], "f32", "params");
  b.write(p, Float32Array.from(rows.flat()));
  const ids = b.createTensor([rows.length], "i32", "ids");
  b.sample(ids, l, p, rows.length);
  const [out] = await b.read([{ tensor: ids }]);
  for (const t of [l, p, ids]) b.destroyTensor(t);
  return out as Int32Array;
}

test("parallel sampling: greedy picks the first maximum; NaN gives -1", async () => {
  const ids = await sample([0.5, 3, -1, 3, 2, 0, -Infinity, 1], [[0, 0, 0, 1, 0.3, 0]]);
  assert.deepEqual(Array.from(ids), [1]);
  assert.deepEqual(Array.from(await sample([1, NaN, 0], [[0, 1, 0, 1, 0.5, 0]])), [-1]);
});

test("parallel sampling: each draw picks what the inverse CDF of the renormalised nucleus gives (ties in the logits)", async () => {
  const random = new TestRandom(31);
  const logits = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? 2.5 : Math.round(random.uniform() * 40) / 10));
  for (const [T, k, p] of [[0.7, 5, 0.8], [1, 0, 0.9], [1.5, 12, 1], [0.5, 0, 1]] as const) {
    const n = nucleusOf(logits, [T, k, p]);
    const us = Array.from({ length: 24 }, () => random.next());
    const ids = await sample(logits, us.map((u) => [0, T, k, p, u, 0]));
    us.forEach((u, i) => {
      let cdf = 0, want = n.ids[n.ids.length - 1], near = false;
      for (let j = 0; j < n.ids.length; j++) {
        cdf += n.probs[j];
        if (Math.abs(Math.fround(u) - cdf) < 1e-5) near = true;
        if (Math.fround(u) < cdf) { want = n.ids[j]; break; }
      }
      if (!near) assert.equal(ids[i], want, `T=${T} k=${k} p=${p} u=${u}`);
    });
  }
});
