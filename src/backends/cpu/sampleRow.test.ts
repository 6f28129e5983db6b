import { test } from "node:test";
import assert from "node:assert/strict";
import { argmax, createRandom, Sampler } from "./sampler.js";

const logits = Float32Array.from([0.1, 2.0, 1.5, -1, 1.9, 0]);

test("argmax takes the first of equal maxima, like torch.argmax", () => {
  assert.equal(argmax(Float32Array.from([1, 3, 3, 2])), 1);
  assert.equal(argmax(Float32Array.from([9, 1, 3, 2]), 1, 3), 1);
});

test("temperature 0 is greedy", () => {
  assert.equal(new Sampler({ temperature: 0 }).sample(logits), 1);
});

test("the same seed reproduces the same samples; another seed differs", () => {
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1.5, seed });
    return Array.from({ length: 40 }, () => s.sample(logits));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test("top-k 1 always picks the argmax; top-k 2 only the two best", () => {
  const k1 = new Sampler({ temperature: 5, topK: 1, seed: 1 });
  const k2 = new Sampler({ temperature: 5, topK: 2, seed: 1 });
  for (let i = 0; i < 100; i++) {
    assert.equal(k1.sample(logits), 1);
    assert.ok([1, 4].includes(k2.sample(logits)));
  }
});

test("top-p keeps the smallest head of the distribution reaching p", () => {
  // probabilities at temperature 1: token 1 ~0.37, token 4 ~0.33, token 2 ~0.22 ...
  const s = new Sampler({ temperature: 1, topP: 0.6, seed: 3 });
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) seen.add(s.sample(logits));
  assert.deepEqual([...seen].sort(), [1, 4]);
});

test("sampling frequencies follow the softmax", () => {
  const s = new Sampler({ temperature: 1, seed: 11 });
  const counts = new Array(logits.length).fill(0);
  const n = 20000;
  for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
  const max = Math.max(...logits);
  const weights = Array.from(logits, (l) => Math.exp(l - max));
  const total = weights.reduce((a, b) => a + b, 0);
  weights.forEach((w, i) => assert.ok(Math.abs(counts[i] / n - w / total) < 0.015, `token ${i}`));
});

test("the random generator is uniform-ish in [0, 1)", () => {
  const r = createRandom(42);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});

test("bad sampling options are refused", () => {
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
  assert.throws(() => new Sampler({ topK: 1.5 }), /top-k/);
  assert.throws(() => new Sampler({ topP: 0 }), /top-p/);
});
