/**
 * The reference kernels' own helpers (the kernels themselves are the
 * reference of kernels.conformance.ts and lightOps.conformance.ts, and run
 * the backend conformance suite as "cpu-reference").
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bf16BitsToF32 } from "../../util/halfFloat.js";
import { bf16ToF32 } from "./referenceKernels.js";

test("bf16ToF32 widens every bf16 bit pattern exactly (the top half of an f32, NaN payloads kept)", () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const out = bf16ToF32(all);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < 65536; i++) {
    assert.equal(bits[i], i << 16 >>> 0, `0x${i.toString(16)}: bits`);
    const want = bf16BitsToF32(i);
    if (!(out[i] === want || (Number.isNaN(want) && Number.isNaN(out[i])))) assert.fail(`0x${i.toString(16)}: ${out[i]} != ${want}`);
  }
  assert.deepEqual(Array.from(bf16ToF32(Uint16Array.of(0x3f80, 0xc000, 0x0000, 0x8000))), [1, -2, 0, -0]);
});
