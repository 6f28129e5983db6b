/**
 * The step layouts (stepLayout.ts): field tables without overlaps, ring
 * positions from their definition, random admission's hash (deterministic,
 * independent of chunking, rate as asked, pinned values so that a port to
 * another backend can be checked bit for bit) and its threshold, and tau's
 * trip through an i32 field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as layout from "./stepLayout.js";
import { admissionHash, bitsOfF32, f32FromBits, randomAdmissionThreshold, ringPosition } from "./stepLayout.js";

test("each record's fields are distinct slots below its size", () => {
  for (const [prefix, size] of [["SEQ_", layout.SEQ_FIELDS], ["SAMPLE_", layout.SAMPLE_FIELDS], ["SNAP_", layout.SNAP_FIELDS]] as const) {
    const slots = Object.entries(layout).filter(([name, v]) => name.startsWith(prefix) && name !== `${prefix}FIELDS` && typeof v === "number").map(([, v]) => v as number);
    assert.ok(slots.length >= 4, prefix);
    assert.equal(new Set(slots).size, slots.length, `${prefix}* overlap`);
    assert.ok(slots.every((s) => Number.isInteger(s) && s >= 0 && s < size), `${prefix}* outside [0, ${size})`);
  }
  const kinds = [layout.ADMIT_FULL, layout.ADMIT_LOCAL, layout.ADMIT_SINKS, layout.ADMIT_RANDOM, layout.ADMIT_GATE];
  assert.equal(new Set(kinds).size, kinds.length);
  assert.equal(layout.PAGE_SIZE, 16);
});

test("ringPosition is the latest position p < numTokens with p mod W = offset", () => {
  for (const W of [16, 32, 48, 256]) {
    for (const numTokens of [1, 5, W - 1, W, W + 1, 3 * W + 7, 1000]) {
      for (let o = 0; o < Math.min(numTokens, W); o++) {
        let p = numTokens - 1;
        while (p % W !== o) p--;
        assert.equal(ringPosition(o, numTokens, W), p, `W=${W} n=${numTokens} o=${o}`);
      }
    }
  }
});

test("admissionHash: pinned values, admitted share near the rate, every argument matters", () => {
  // NOTE: pinned: the host (planner, tests) and every device port must compute these exact bits
  assert.deepEqual([admissionHash(0, 0, 0, 0), admissionHash(1, 2, 3, 4), admissionHash(12345, 7, 1, 99999), admissionHash(-1, 31, 7, 2 ** 20)], PINNED);
  const threshold = randomAdmissionThreshold(0.3);
  for (const [seed, layer, head] of [[1, 0, 0], [2, 5, 1], [99, 11, 3]]) {
    let admitted = 0;
    for (let p = 0; p < 20000; p++) if (admissionHash(seed, layer, head, p) < threshold) admitted++;
    assert.ok(Math.abs(admitted / 20000 - 0.3) < 0.015, `seed ${seed}: ${admitted / 20000}`);
  }
  const base = [7, 3, 1, 500] as const;
  const h = admissionHash(...base);
  for (let i = 0; i < 4; i++) {
    const moved = [...base] as [number, number, number, number];
    moved[i]++;
    assert.notEqual(admissionHash(...moved), h, `argument ${i} changes the hash`);
  }
  assert.ok(h >= 0 && h <= 0xffffffff && Number.isInteger(h), "a u32");
});

test("randomAdmissionThreshold: admitted iff hash < threshold, at the rate; clamped at both ends", () => {
  assert.equal(randomAdmissionThreshold(0), 0);
  assert.equal(randomAdmissionThreshold(0.5), 2 ** 31);
  assert.equal(randomAdmissionThreshold(1), 0xffffffff);
  assert.equal(randomAdmissionThreshold(2), 0xffffffff);
  assert.equal(randomAdmissionThreshold(0.25), 2 ** 30);
});

test("tau travels as its f32 bits in an i32 field", () => {
  assert.equal(bitsOfF32(1), 0x3f800000);
  assert.equal(bitsOfF32(-2), 0xc0000000 | 0, "negative floats give negative i32");
  for (const x of [0.1, 0.25, 1e-3, 0.999, 0, -0.5]) assert.equal(f32FromBits(bitsOfF32(x)), Math.fround(x));
  assert.equal(Int32Array.of(bitsOfF32(-2))[0], bitsOfF32(-2), "fits an Int32Array slot");
});

const PINNED = [0x21ea0f20, 0x4c4e2e48, 0xb6c61312, 0x33782cf2];
