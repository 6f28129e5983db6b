/**
 * @module backends/cpu/kernels.conformance
 *
 * The conformance suite every CpuKernels implementation must pass: each kernel
 * is run on seeded random inputs and compared with the reference kernels
 * (tolerance: max abs error / max abs reference <= 1e-5), plus the allocator's
 * guarantees. Call runKernelConformance from a *.test.ts file.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CpuKernels, WeightDType } from "./kernels.js";
import { createReferenceKernels } from "./referenceKernels.js";

const TOLERANCE = 1e-5;

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
      assert.ok(b >= a + 64 && c >= b + 128 && d >= c);
      assert.ok(kernels.buffer().byteLength >= d + 64);
    });

    test("alloc grows the memory and preserves earlier data", () => {
      const p = kernels.alloc(4096);
      new Uint8Array(kernels.buffer(), p, 4096).set(randomBytes(4096, 7));
      const size = kernels.buffer().byteLength;
      const big = kernels.alloc(size + 12345);
      assert.ok(kernels.buffer().byteLength >= big + size + 12345);
      assert.deepEqual(new Uint8Array(kernels.buffer(), p, 4096), randomBytes(4096, 7));
      new Uint8Array(kernels.buffer(), big + size, 12345).fill(1); // the new end is writable
    });

    for (const wDType of ["f32", "bf16"] as const) {
      for (const withBias of [false, true]) {
        test(`matmul ${wDType} weights${withBias ? " + bias" : ""} matches the reference`, () => {
          let seed = 1;
          for (const [M, N, K] of MATMUL_SHAPES) {
            checkMatmul(kernels, reference, wDType, withBias, M, N, K, seed++, 0);
          }
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
      const [M, N, K] = [4, 256, 128];
      const xs = [randomF32(M * K, 11), randomF32(M * K, 12)].map((x) => upload(kernels, x, 0));
      const w = upload(kernels, randomF32(N * K, 13), 0);
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
  const x = randomF32(M * K, seed);
  const wF32 = randomF32(N * K, seed + 1000);
  const w = wDType === "f32" ? wF32 : new Uint16Array(wF32.buffer).filter((_, i) => i % 2 === 1); // top halves = bf16
  const bias = withBias ? randomF32(N, seed + 2000) : null;
  const run = (k: CpuKernels): Float32Array => {
    const px = upload(k, x, skew), pw = upload(k, w, skew), pb = bias ? upload(k, bias, 0) : 0;
    const out = k.alloc(M * N * 4 + 64) + 4 * skew;
    k.matmul(out, px, pw, wDType, pb, M, N, K);
    return new Float32Array(k.buffer(), out, M * N).slice();
  };
  assertClose(run(kernels), run(reference), `matmul ${wDType} bias=${withBias} M=${M} N=${N} K=${K}`);
}

/** Copies data into fresh memory of k, `skew` elements past a 64-byte boundary; returns its pointer. */
export function upload(k: CpuKernels, data: Float32Array | Uint16Array, skew: number): number {
  const offset = skew * data.BYTES_PER_ELEMENT;
  const ptr = k.alloc(data.byteLength + offset) + offset;
  new Uint8Array(k.buffer(), ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return ptr;
}

/** max |actual - expected| / max |expected| <= tolerance (NaN fails). */
export function assertClose(actual: Float32Array, expected: Float32Array, what: string, tolerance = TOLERANCE): void {
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  // NaN anywhere makes maxErr NaN, which fails the comparison below.
  const rel = maxErr / (maxRef || 1);
  assert.ok(rel <= tolerance, `${what}: relative error ${rel} > ${tolerance}`);
}

/** Seeded uniform [-1, 1) values (mulberry32). */
export function randomF32(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

function randomBytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from(randomF32(length, seed), (v) => Math.floor((v + 1) * 128));
}
