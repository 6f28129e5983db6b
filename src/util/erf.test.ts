import { test } from "node:test";
import assert from "node:assert/strict";
import { erf, erfc, geluErf } from "./erf.js";

// [x, erf(x), erfc(x)] from CPython's math.erf / math.erfc (libm).
const KNOWN: ReadonlyArray<readonly [number, number, number]> = [
  [0, 0, 1],
  [1e-8, 1.1283791670955126e-8, 0.9999999887162083],
  [0.1, 0.1124629160182849, 0.8875370839817152],
  [0.5, 0.5204998778130465, 0.4795001221869535],
  [1, 0.8427007929497149, 0.15729920705028513],
  [1.5, 0.9661051464753108, 0.033894853524689274],
  [2, 0.9953222650189527, 0.004677734981047265],
  [2.4999, 0.9995928300996666, 0.0004071699003334514],
  [2.5, 0.999593047982555, 0.0004069520174449589],
  [3, 0.9999779095030014, 2.2090496998585438e-5],
  [3.5, 0.9999992569016276, 7.430983723414128e-7],
  [4, 0.9999999845827421, 1.541725790028002e-8],
  [5, 0.9999999999984626, 1.5374597944280351e-12],
  [6, 1.0, 2.1519736712498916e-17],
  [-0.7, -0.6778011938374184, 1.6778011938374184],
  [-3.2, -0.9999939742388483, 1.9999939742388482],
  [10, 1.0, 2.088487583762545e-45],
];

test("erf matches libm to 1e-14 absolute", () => {
  for (const [x, want] of KNOWN) {
    assert.ok(Math.abs(erf(x) - want) < 1e-14, `erf(${x}) = ${erf(x)}, want ${want}`);
  }
});

test("erfc matches libm to 1e-12 relative, also in the far tail", () => {
  for (const [x, , want] of KNOWN) {
    const got = erfc(x);
    assert.ok(Math.abs(got - want) <= 1e-12 * Math.abs(want), `erfc(${x}) = ${got}, want ${want}`);
  }
});

test("erf is odd, bounded and monotone across the branch switch", () => {
  let prev = -1;
  for (let x = -7; x <= 7; x += 0.01) {
    const y = erf(x);
    assert.ok(Math.abs(y + erf(-x)) < 1e-15);
    assert.ok(y >= prev - 1e-15 && Math.abs(y) <= 1, `erf not monotone at ${x}`);
    prev = y;
  }
  assert.ok(Number.isNaN(erf(NaN)));
  assert.equal(erf(Infinity), 1);
  assert.equal(erf(-Infinity), -1);
});

test("geluErf matches x * Phi(x)", () => {
  // x/2 * math.erfc(-x/sqrt(2)) in CPython.
  assert.ok(Math.abs(geluErf(1) - 0.8413447460685429) < 1e-15);
  assert.ok(Math.abs(geluErf(-1) - -0.15865525393145707) < 1e-15);
  assert.equal(geluErf(0), 0);
  assert.ok(geluErf(-10) < 0 && geluErf(-10) > -1e-21);
});
