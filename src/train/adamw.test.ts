import { test } from "node:test";
import assert from "node:assert/strict";
import { adamwStep, createAdamWState, learningRate } from "./adamw.js";

test("adamw matches PyTorch's update, written out in f64 for two steps", () => {
  const p = Float32Array.of(0.5, -1, 2), g1 = Float32Array.of(0.1, -0.2, 0), g2 = Float32Array.of(-0.3, 0.05, 1);
  const state = createAdamWState(3);
  const lr = 0.01, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const want = Array.from(p);
  const m = [0, 0, 0], v = [0, 0, 0];
  for (const [t, g] of [[1, g1], [2, g2]] as const) {
    adamwStep(p, g, state, lr);
    for (let i = 0; i < 3; i++) {
      want[i] = want[i]! * (1 - lr * wd);
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
      want[i] -= (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
    }
  }
  assert.equal(state.step, 2);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(p[i]! - want[i]!) < 1e-6, `${i}: ${p[i]} vs ${want[i]}`);
  // a zero gradient still decays the weight
  assert.ok(Math.abs(p[2]!) < 2);
});

test("learning rate: linear warm-up to the peak, cosine to zero", () => {
  assert.equal(learningRate(0, 100, 1e-3, 10), 1e-4);
  assert.equal(learningRate(9, 100, 1e-3, 10), 1e-3);
  assert.ok(Math.abs(learningRate(10, 100, 1e-3, 10) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRate(55, 100, 1e-3, 10) - 5e-4) < 1e-12);
  assert.ok(learningRate(99, 100, 1e-3, 10) < 1e-6);
  let last = Infinity;
  for (let s = 10; s < 100; s++) {
    const lr = learningRate(s, 100, 1e-3, 10);
    assert.ok(lr <= last);
    last = lr;
  }
});
