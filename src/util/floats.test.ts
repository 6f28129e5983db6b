import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeFloats, encodeFloatsLE } from "./floats.js";

test("decodeFloats reads every dtype little- and big-endian, at odd offsets", () => {
  const values = [1.5, -2, 0.25, 65504];
  for (const dtype of ["f32", "f16", "bf16", "f64"] as const) {
    const enc = encodeFloatsLE(values, dtype);
    const padded = new Uint8Array(enc.length + 3);
    padded.set(enc, 3);
    const want = dtype === "bf16" ? [1.5, -2, 0.25, 65536] : values;
    assert.deepEqual(Array.from(decodeFloats(padded, 3, 4, dtype)), want, dtype);
    const size = enc.length / 4;
    const swapped = new Uint8Array(enc.length);
    for (let i = 0; i < enc.length; i++) swapped[i] = enc[Math.floor(i / size) * size + (size - 1 - (i % size))]!;
    assert.deepEqual(Array.from(decodeFloats(swapped, 0, 4, dtype, false)), want, `${dtype} big-endian`);
  }
});

test("encodeFloatsLE rounds 16-bit formats to nearest even", () => {
  const halves = new DataView(encodeFloatsLE([1 + 2 ** -11, 1 + 3 * 2 ** -11], "f16").buffer);
  assert.deepEqual([halves.getUint16(0, true), halves.getUint16(2, true)], [0x3c00, 0x3c02]);
  const bf = new DataView(encodeFloatsLE([1 + 2 ** -8, 1 + 3 * 2 ** -8], "bf16").buffer);
  assert.deepEqual([bf.getUint16(0, true), bf.getUint16(2, true)], [0x3f80, 0x3f82]);
});
