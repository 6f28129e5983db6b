/**
 * @module backends/cpu/kernels.conformance
 *
 * The conformance suite every CpuKernels implementation passes: matmul on
 * seeded random inputs of every shape class against the reference kernels
 * (max |error| / max |reference| <= 2e-6: the two sum in different orders,
 * with and without fused multiply-adds; measured up to 5.5e-7), and the memory's
 * guarantees (aligned non-zero pointers, growth that keeps data, fresh
 * blocks zero, freed blocks reused). Light ops and the gate are in
 * lightOps.conformance.ts, paged attention in pagedAttention.conformance.ts.
 * Call runKernelConformance from a *.test.ts file.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertClose, TestRandom } from "../conformance/testData.js";
import type { CpuKernels, WeightDType } from "./kernels.js";
import { createReferenceKernels } from "./referenceKernels.js";

export const TOLERANCE = 2e-6;

/**
 * [M, N, K]: M=1 (decode), K=1, K and N tails, M tails, small N with large M, the model's shapes.
 * The larger ones (M·N·K >= 64K) are big enough for threaded kernels to split them.
 */
const MATMUL_SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1], [1, 3, 5], [1, 4, 4], [2, 5, 1], [3, 7, 9], [4, 4, 8], [5, 3, 17], [7, 13, 33],
  [1, 384, 384], [1, 130, 127], [9, 130, 127], [17, 64, 384], [64, 128, 384], [33, 66, 1024], [260, 6, 64], [70, 200, 5],
];

export function runKernelConformance(name: string, create: () => Promise<CpuKernels>): void {
  describe(`${name}: CpuKernels conformance`, () => {
    let kernels: CpuKernels;
    let reference: CpuKernels;
    before(async () => {
      kernels = await create();
      reference = createReferenceKernels();
    });
    after(() => {
      kernels.dispose();
      reference.dispose();
    });

    test("alloc returns distinct 64-aligned non-zero pointers", () => {
      const a = kernels.alloc(1), b = kernels.alloc(100), c = kernels.alloc(0), d = kernels.alloc(64);
      for (const p of [a, b, c, d]) assert.ok(p > 0 && p % 64 === 0, `pointer ${p}`);
      const blocks = [[a, 64], [b, 128], [c, 64], [d, 64]].sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < blocks.length; i++) assert.ok(blocks[i][0] >= blocks[i - 1][0] + blocks[i - 1][1], "blocks overlap");
      assert.ok(kernels.buffer().byteLength >= Math.max(a, b, c, d) + 64);
      for (const p of [a, b, c, d]) kernels.free(p);
    });

    test("alloc grows the memory and preserves earlier data; fresh blocks are zero; freed blocks are reused", () => {
      const random = new TestRandom(1);
      const data = Uint8Array.from({ length: 4096 }, () => random.int(256));
      const p = kernels.alloc(4096);
      new Uint8Array(kernels.buffer(), p, 4096).set(data);
      const size = kernels.buffer().byteLength;
      const big = kernels.allocBlock(size + 12345);
      assert.ok(big.fresh, "a block past everything handed out is fresh");
      assert.ok(kernels.buffer().byteLength >= big.ptr + size + 12345);
      assert.deepEqual(new Uint8Array(kernels.buffer(), p, 4096), data);
      const fresh = new Uint8Array(kernels.buffer(), big.ptr, size + 12345);
      assert.ok(fresh.every((x) => x === 0), "a fresh block is zero");
      fresh.fill(1); // the new end is writable
      kernels.free(big.ptr);
      const again = kernels.allocBlock(size + 12345);
      assert.deepEqual(again, { ptr: big.ptr, fresh: false }, "the freed block is reused, and said not to be fresh");
      kernels.free(again.ptr);
      kernels.free(p);
      assert.ok(kernels.usedBytes <= kernels.maxBytes);
    });

    for (const wDType of ["f32", "bf16"] as const) {
      for (const withBias of [false, true]) {
        test(`matmul ${wDType} weights${withBias ? " + bias" : ""} matches the reference`, () => {
          let seed = 1;
          for (const [M, N, K] of MATMUL_SHAPES) checkMatmul(kernels, reference, wDType, withBias, M, N, K, seed++, 0);
        });
      }
    }

    test("matmul on unaligned pointers (inputs at odd element offsets)", () => {
      checkMatmul(kernels, reference, "f32", true, 5, 9, 13, 99, 1);
      checkMatmul(kernels, reference, "bf16", true, 6, 10, 11, 98, 1);
    });

    test("a call on memory out of bounds throws, and the kernels stay usable", () => {
      const end = kernels.buffer().byteLength;
      assert.throws(() => kernels.matmul(kernels.alloc(4 * 1024), end, end, "f32", 0, 4, 256, 256));
      checkMatmul(kernels, reference, "f32", false, 4, 256, 256, 97, 0);
    });

    test("back-to-back calls of mixed sizes into one output stay exact", () => {
      // Alternates a call small enough to run unsplit with two split ones whose
      // inputs differ, all writing `out`: a thread finishing a call late would show.
      const random = new TestRandom(11);
      const [M, N, K] = [4, 256, 128];
      const xs = [random.floats(M * K), random.floats(M * K)].map((x) => upload(kernels, x, 0));
      const w = upload(kernels, random.floats(N * K), 0);
      const out = kernels.alloc(M * N * 4);
      const expected = xs.map((x) => {
        kernels.matmul(out, x, w, "f32", 0, M, N, K);
        return new Float32Array(kernels.buffer(), out, M * N).slice();
      });
      for (let i = 0; i < 300; i++) {
        kernels.matmul(out, xs[i & 1], w, "f32", 0, 1, 8, 16);
        kernels.matmul(out, xs[i & 1], w, "f32", 0, M, N, K);
        assert.deepEqual(new Float32Array(kernels.buffer(), out, M * N), expected[i & 1], `iteration ${i}`);
      }
    });
  });
}

function checkMatmul(
  kernels: CpuKernels, reference: CpuKernels, wDType: WeightDType, withBias: boolean,
  M: number, N: number, K: number, seed: number, skew: number,
): void {
  const random = new TestRandom(seed);
  const x = random.floats(M * K);
  const wF32 = random.floats(N * K);
  const w = wDType === "f32" ? wF32 : new Uint16Array(wF32.buffer).filter((_, i) => i % 2 === 1); // top halves = bf16
  const bias = withBias ? random.floats(N) : null;
  const run = (k: CpuKernels): Float32Array => {
    const px = upload(k, x, skew), pw = upload(k, w, skew), pb = bias ? upload(k, bias, 0) : 0;
    const out = k.alloc(M * N * 4 + 64) + 4 * skew;
    k.matmul(out, px, pw, wDType, pb, M, N, K);
    return new Float32Array(k.buffer(), out, M * N).slice();
  };
  assertClose(run(kernels), run(reference), TOLERANCE, `matmul ${wDType} bias=${withBias} M=${M} N=${N} K=${K}`);
}

/** Copies data into fresh memory of k, `skew` elements past a 64-byte boundary; returns its pointer. */
export function upload(k: CpuKernels, data: Float32Array | Uint16Array | Int32Array, skew: number): number {
  const offset = skew * data.BYTES_PER_ELEMENT;
  const ptr = k.alloc(data.byteLength + offset) + offset;
  new Uint8Array(k.buffer(), ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return ptr;
}
