import { test } from "node:test";
import assert from "node:assert/strict";
import { bf16ToF32 } from "./referenceKernels.js";

test("bf16ToF32 widens exactly", () => {
  const out = bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x0000]));
  assert.deepEqual(Array.from(out), [1, -2, 0]);
});
