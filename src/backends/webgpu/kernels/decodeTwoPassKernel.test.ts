/**
 * The two-pass decode kernel's workgroup-memory accounting, which decides
 * whether a shape runs it or falls back (cacheOps.ts): twoPassSharedBytes
 * must be what the generated WGSL declares, for every shape it may see.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KvDType } from "../../backend.js";
import { decodeTwoPassKernel, twoPassApplies, twoPassSharedBytes } from "./decodeTwoPassKernel.js";

/** Bytes of the `var<workgroup>` arrays a WGSL source declares. */
function declaredSharedBytes(code: string): number {
  let bytes = 0;
  for (const m of code.matchAll(/var<workgroup> \w+: array<(f32|u32|vec4<f32>), (\d+)>/g)) bytes += Number(m[2]) * (m[1] === "vec4<f32>" ? 16 : 4);
  return bytes;
}

test("twoPassSharedBytes is what the kernel declares, for every shape it takes", () => {
  let checked = 0;
  for (const kvDType of ["f32", "f16", "bf16"] as KvDType[]) {
    for (const headDim of [16, 64, 128, 256]) {
      for (const subgroupSize of [8, 16, 32]) {
        if (!twoPassApplies(headDim, kvDType, subgroupSize)) continue;
        for (const group of [1, 4, 7, 8]) {
          for (const [keysPerInvocation, chunkBuffers, segTiles, keyParts] of [[1, 2, 256, 1], [2, 2, 256, 1], [1, 1, 64, 2], [2, 1, 3, 4]]) {
            const shape = { headDim, group, kvDType, numQueries: group, subgroupSize, valueLoads: 8, keysPerInvocation, chunkBuffers, segTiles, keyParts };
            assert.equal(declaredSharedBytes(decodeTwoPassKernel(shape).code), twoPassSharedBytes(shape), JSON.stringify(shape));
            checked++;
          }
        }
      }
    }
  }
  assert.ok(checked > 100, `${checked} shapes`);
});

test("a K row loads in as many parts as divide it, up to those asked for", () => {
  const shape = { headDim: 64, group: 1, kvDType: "f16" as KvDType, numQueries: 1, subgroupSize: 32, valueLoads: 8, keysPerInvocation: 1 };
  // 64 halves: 8 vec4 words a row; parts of 3 are not whole words, so 2
  const loadsBeforeFirstMath = (keyParts: number) => {
    const code = decodeTwoPassKernel({ ...shape, keyParts }).code;
    const scores = code.slice(code.indexOf("let w0_0"));
    return scores.slice(0, scores.indexOf("{ let k =")).match(/let w0_\d+ = pool/g)?.length;
  };
  assert.equal(loadsBeforeFirstMath(1), 8);
  assert.equal(loadsBeforeFirstMath(3), 4);
  assert.equal(loadsBeforeFirstMath(4), 2);
  assert.equal(loadsBeforeFirstMath(100), 1);
  assert.throws(() => decodeTwoPassKernel({ ...shape, chunkBuffers: 3 }), /3 chunk buffers/);
});

test("the kernel refuses shapes whose V row does not fit a subgroup's 16-byte loads", () => {
  assert.equal(twoPassApplies(256, "f32", 32), false); // 1024-byte rows: 64 invocations per row
  assert.equal(twoPassApplies(128, "bf16", 8), false);
  assert.equal(twoPassApplies(128, "bf16", 16), true);
  assert.throws(() => decodeTwoPassKernel({ headDim: 256, group: 1, kvDType: "f32", numQueries: 1, subgroupSize: 32, valueLoads: 8, keysPerInvocation: 1 }), /does not fit subgroups of 32/);
});
