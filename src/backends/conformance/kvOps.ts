/**
 * @module backends/conformance/kvOps
 *
 * The dual cache's data movement: writeKv (rounding to the page dtype,
 * the [Hkv, rows] slot mapping at an offset, -1 rows skipped), copySlots
 * (only the pairs in [first, first + count), K and V both), and scatter into
 * i32 and u8 tensors. Page contents are read back through pageProbe.ts.
 *
 * Exactness: a V value reads back bit for bit as util/halfFloat.ts rounds it
 * (f16, bf16: to nearest even; f16 overflow to infinity; NaN stays NaN).
 * Keys are checked through their effect on attention weights (2e-6); their
 * stored bits are checked exactly where a backend exposes its memory
 * (cpu/cpuBackend.test.ts).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KvDType, KvPool } from "../backend.js";
import { PAGE_SIZE } from "../stepLayout.js";
import { f32Tensor, i32Tensor, readI32, readU8, tensorFrom, type ConformanceContext } from "./context.js";
import { probeSlots } from "./pageProbe.js";
import { assertClose, assertSameNumbers, roundingFloats, roundToKv, TestRandom } from "./testData.js";

const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];
const KEY_WEIGHT_TOLERANCE = 2e-6;
const d = 16;

export function describeKvOps(ctx: ConformanceContext): void {
  describe("KV writes, slot copies and scatter", () => {
    for (const kvDType of KV_DTYPES) {
      test(`writeKv to ${kvDType} pages: every value rounded as util/halfFloat (ties, subnormals, overflow, inf, NaN), -1 rows skipped, mapping at an offset`, async () => {
        const b = ctx.backend;
        const random = new TestRandom(300 + KV_DTYPES.indexOf(kvDType));
        const [T, H] = [9, 2];
        const numPages = T * H + 4;
        const pool = b.createKvPool(numPages, d, kvDType);
        const round = roundToKv(kvDType);
        // every page's first slot starts with a known row
        const firstSlots = Array.from({ length: numPages }, (_, p) => p * PAGE_SIZE);
        const before = random.floats(numPages * d, 4);
        writeRows(ctx, pool, random, firstSlots, before);
        const expected = Array.from(before, round);

        // f16 pages hold only finite values first (a backend may read them the cheap way), then infinities and NaN
        for (const phase of kvDType === "f16" ? ["finite", "special"] : ["special"]) {
          const values = phase === "finite" ? random.floats((T + 1) * H * d).map((x, i) => (i % 3 ? x * 2 ** -20 : x * 6e4)) : roundingFloats(random, (T + 1) * H * d);
          const keys = random.floats((T + 1) * H * d);
          // mapping [H, T] at offset 3, each row to the first slot of a page, a third skipped
          const pages = random.permutation(numPages);
          // entries outside [3, 3 + H*T) name a page no row goes to: using them shows
          const mapping = new Int32Array(3 + H * T + 2).fill(pages[H * T] * PAGE_SIZE);
          for (let i = 0; i < H * T; i++) mapping[3 + i] = random.next() < 0.33 ? -1 : pages[i] * PAGE_SIZE;
          const k = f32Tensor(ctx.backend, [T + 1, H * d], keys, "k"), v = f32Tensor(ctx.backend, [T + 1, H * d], values, "v");
          b.writeKv(pool, k, v, i32Tensor(b, [mapping.length], mapping, "slot mapping"), 3, T);
          for (let h = 0; h < H; h++) {
            for (let t = 0; t < T; t++) {
              const slot = mapping[3 + h * T + t];
              if (slot >= 0) for (let c = 0; c < d; c++) expected[(slot / PAGE_SIZE) * d + c] = round(values[(t * H + h) * d + c]);
            }
          }
          const got = await probeSlots(b, pool, firstSlots);
          assertSameNumbers(got, ctx.subnormalsMayFlush ? flushedWhereSubnormal(got, expected) : expected, `writeKv ${kvDType} (${phase} values)`);
          if (phase === "special" && kvDType === "f16") assert.ok(got.some((x) => x === Infinity) && got.some((x) => Number.isNaN(x)), "the case writes f16 infinities and NaN");
        }
      });
    }

    for (const kvDType of KV_DTYPES) {
      test(`copySlots to ${kvDType} pages copies K and V of the pairs in [first, first + count) only`, async () => {
        const b = ctx.backend;
        const random = new TestRandom(310 + KV_DTYPES.indexOf(kvDType));
        const numPages = 20;
        const pool = b.createKvPool(numPages, d, kvDType);
        const round = roundToKv(kvDType);
        // pages 0..9: sources at every offset; pages 10..19: destinations (first slots), each with a row of its own
        const sources = Array.from({ length: 10 }, (_, i) => i * PAGE_SIZE + ((i * 7) % PAGE_SIZE));
        const dests = Array.from({ length: 10 }, (_, i) => (10 + i) * PAGE_SIZE);
        const srcK = random.floats(10 * d, 3), srcV = random.floats(10 * d, 3), dstK = random.floats(10 * d, 3), dstV = random.floats(10 * d, 3);
        writeRows(ctx, pool, random, sources, srcV, srcK);
        writeRows(ctx, pool, random, dests, dstV, dstK);
        const pairs = random.permutation(10);
        const copies = new Int32Array(2 * 10);
        pairs.forEach((p, i) => copies.set([sources[p], dests[i]], 2 * i));
        const [first, count] = [3, 5];
        b.copySlots(pool, i32Tensor(b, [10, 2], copies, "copies"), first, count);
        const inRange = (i: number) => i >= first && i < first + count;
        const rowOf = (a: Float32Array, i: number) => Array.from(a.subarray(i * d, (i + 1) * d), round);
        const wantV = dests.flatMap((_, i) => (inRange(i) ? rowOf(srcV, pairs[i]) : rowOf(dstV, i)));
        assertSameNumbers(await probeSlots(b, pool, dests), wantV, `copySlots ${kvDType}: values`);
        // keys: out = V * sigmoid(K[0])
        const wantWeighted = dests.flatMap((_, i) => {
          const k0 = inRange(i) ? round(srcK[pairs[i] * d]) : round(dstK[i * d]);
          return wantV.slice(i * d, (i + 1) * d).map((x) => x / (1 + Math.exp(-k0)));
        });
        assertClose(await probeSlots(b, pool, dests, "key"), wantWeighted, KEY_WEIGHT_TOLERANCE, `copySlots ${kvDType}: keys`);
        // sources are untouched
        assertSameNumbers(await probeSlots(b, pool, sources.filter((s) => s % PAGE_SIZE === 0)), sources.flatMap((s, i) => (s % PAGE_SIZE === 0 ? rowOf(srcV, i) : [])), "copySlots: sources");
      });
    }

    test("scatter into i32 and u8 tensors: the first `count` updates only", async () => {
      const b = ctx.backend;
      const dstI = i32Tensor(b, [4, 5], Array.from({ length: 20 }, (_, i) => -i), "i32 table");
      const dstU = tensorFrom(b, [3, 7], "u8", new Uint8Array(21).fill(9), "u8 flags");
      const updatesI = [[0, 100], [19, -5], [7, 2 ** 31 - 1], [3, 0], [11, 42]];
      const updatesU = [[20, 1], [0, 0], [13, 255], [5, 1]];
      b.scatter(dstI, i32Tensor(b, [5, 2], updatesI.flat(), "i32 updates"), 4);
      b.scatter(dstU, i32Tensor(b, [4, 2], updatesU.flat(), "u8 updates"), 3);
      const wantI = Array.from({ length: 20 }, (_, i) => -i);
      for (const [at, value] of updatesI.slice(0, 4)) wantI[at] = value;
      const wantU = new Array(21).fill(9);
      for (const [at, value] of updatesU.slice(0, 3)) wantU[at] = value;
      assert.deepEqual(Array.from(await readI32(b, dstI)), wantI);
      assert.deepEqual(Array.from(await readU8(b, dstU)), wantU);
    });
  });
}

/** expected, with 0 where it is an f32 subnormal and got is 0 (read through arithmetic that flushes). */
function flushedWhereSubnormal(got: ArrayLike<number>, expected: ArrayLike<number>): number[] {
  return Array.from(expected, (e, i) => (e !== 0 && Math.abs(e) < 2 ** -126 && got[i] === 0 ? 0 : e));
}

/** Writes one row per slot (V = values, K = keys or finite random keys with |K[0]| <= 4) through writeKv. */
function writeRows(ctx: ConformanceContext, pool: KvPool, random: TestRandom, slots: readonly number[], values: Float32Array, keys?: Float32Array): void {
  const b = ctx.backend, n = slots.length;
  const k = f32Tensor(b, [n, d], keys ?? random.floats(n * d, 4), "k rows");
  const v = f32Tensor(b, [n, d], values, "v rows");
  b.writeKv(pool, k, v, i32Tensor(b, [n], slots, "row slots"), 0, n);
}
