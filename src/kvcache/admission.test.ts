/**
 * @module kvcache/admission.test
 *
 * Admission policies are descriptions the device decides by: these tests pin
 * how each travels in the step's sequence fields (kind, argument, seed).
 * Random admission's rate becomes a u32 threshold floor(rate * 2^32) (rate 1
 * would need 2^32, so it maps to full admission); the gate's tau travels as
 * its f32 bits, so the device compares against exactly Math.fround(tau).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ADMIT_FULL, ADMIT_GATE, ADMIT_LOCAL, ADMIT_RANDOM, ADMIT_SINKS, admissionHash, bitsOfF32, f32FromBits, randomAdmissionThreshold,
} from "../backends/stepLayout.js";
import { admissionFields, admitAll, gateAdmission, localOnly, randomAdmission, sinksAndLocal } from "./admission.js";

test("the ADMIT_* codes the device reads", () => {
  assert.deepEqual([ADMIT_FULL, ADMIT_LOCAL, ADMIT_SINKS, ADMIT_RANDOM, ADMIT_GATE], [0, 1, 2, 3, 4]);
});

test("policies carry canonical names and are frozen", () => {
  assert.deepEqual([admitAll.name, localOnly.name, sinksAndLocal(4).name, randomAdmission(0.25).name, gateAdmission(0.1).name], ["full", "local", "sinks:4", "random:0.25", "gate"]);
  assert.equal(randomAdmission(0.25).seed, 0);
  assert.equal(randomAdmission(0.25, 9).seed, 9);
  for (const p of [admitAll, localOnly, sinksAndLocal(4), randomAdmission(0.5), gateAdmission(0.1)]) assert.ok(Object.isFrozen(p));
});

test("full, local and sinks as sequence fields", () => {
  assert.deepEqual(admissionFields(admitAll), { kind: ADMIT_FULL, arg: 0, seed: 0 });
  assert.deepEqual(admissionFields(localOnly), { kind: ADMIT_LOCAL, arg: 0, seed: 0 });
  assert.deepEqual(admissionFields(sinksAndLocal(4)), { kind: ADMIT_SINKS, arg: 4, seed: 0 });
  assert.deepEqual(admissionFields(sinksAndLocal(250)), { kind: ADMIT_SINKS, arg: 250, seed: 0 });
});

test("random: threshold floor(rate * 2^32) as an i32 field, with the seed; rate 1 is full admission", () => {
  assert.deepEqual(admissionFields(randomAdmission(0.25, 7)), { kind: ADMIT_RANDOM, arg: 2 ** 30, seed: 7 });
  assert.deepEqual(admissionFields(randomAdmission(0)), { kind: ADMIT_RANDOM, arg: 0, seed: 0 });
  // above 2^31 the u32 threshold wraps into a negative i32; the device reads it back as u32
  const high = admissionFields(randomAdmission(0.75));
  assert.equal(high.arg, -(2 ** 30));
  assert.equal(high.arg >>> 0, 3 * 2 ** 30);
  assert.equal(admissionFields(randomAdmission(0.1)).arg >>> 0, Math.floor(0.1 * 2 ** 32));
  assert.deepEqual(admissionFields(randomAdmission(1, 5)), { kind: ADMIT_FULL, arg: 0, seed: 0 });
  assert.equal(randomAdmissionThreshold(1 - 2 ** -40), 0xffffffff);
  assert.equal(randomAdmissionThreshold(1), 0xffffffff);
});

test("random: hash < threshold admits at the rate (the device's decision, by the fields)", () => {
  for (const rate of [0.1, 0.5, 0.9]) {
    const { arg, seed } = admissionFields(randomAdmission(rate, 3));
    let numAdmitted = 0;
    for (let p = 0; p < 20_000; p++) if (admissionHash(seed, 1, 0, p) < arg >>> 0) numAdmitted++;
    assert.ok(Math.abs(numAdmitted / 20_000 - rate) < 0.02, `rate ${rate}: ${numAdmitted / 20_000}`);
  }
});

test("gate: tau travels as its f32 bits", () => {
  const { kind, arg, seed } = admissionFields(gateAdmission(0.1));
  assert.equal(kind, ADMIT_GATE);
  assert.equal(seed, 0);
  assert.equal(arg, 0x3dcccccd);
  assert.equal(f32FromBits(bitsOfF32(0.1)), Math.fround(0.1));
  assert.notEqual(f32FromBits(arg), 0.1, "the device compares with the f32 nearest 0.1");
  for (const tau of [0.5, 0.25, 0.999, 1e-3]) assert.equal(f32FromBits(admissionFields(gateAdmission(tau)).arg), Math.fround(tau));
  // a tau whose bits have the sign bit set still round-trips (the field is an i32)
  assert.equal(f32FromBits(bitsOfF32(-0.5)), -0.5);
  assert.ok(bitsOfF32(-0.5) < 0);
});
