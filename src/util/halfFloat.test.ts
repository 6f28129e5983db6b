import { test } from "node:test";
import assert from "node:assert/strict";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./halfFloat.js";

test("f16 round trip is exact for every half value", () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = f16BitsToF32(h);
    if (Number.isNaN(x)) continue;
    assert.equal(f32ToF16Bits(x), h === 0x8000 ? 0x8000 : h, `bits ${h.toString(16)}`);
  }
});

test("f16 rounding picks the nearest half (ties to even)", () => {
  assert.equal(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11)), 1); // tie -> even (1.0)
  assert.equal(f16BitsToF32(f32ToF16Bits(1 + 3 * 2 ** -11)), 1 + 2 ** -9); // tie -> even (up)
  assert.equal(f16BitsToF32(f32ToF16Bits(1e6)), Infinity);
  assert.equal(f16BitsToF32(f32ToF16Bits(3e-8)), 2 ** -24); // rounds up to the smallest subnormal
});

test("bf16 rounds to nearest even", () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
});
