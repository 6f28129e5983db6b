/**
 * What the backend conformance suite cannot see through the interface, on
 * the CPU backend whose memory a test can read: the exact bits writeKv and
 * copySlots leave in K and V pages (keys included, at any slot offset), the
 * f16 inf/NaN flag that lets attention widen pages the cheap way, the page
 * bounds updatePageBounds keeps, and that a new tensor takes a destroyed
 * one's memory and is zeroed there (so the conformance suite's zeroing test
 * does exercise reuse on this backend).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import { createBackend } from "../../platform/node/backend.js";
import type { Backend, KvDType, KvPool } from "../backend.js";
import { f32Tensor, i32Tensor } from "../conformance/context.js";
import { roundingFloats, roundToKv, TestRandom } from "../conformance/testData.js";
import { CpuBackend, CpuTensor } from "./cpuBackend.js";
import { cpuPool } from "./cpuKvOps.js";

const BACKENDS = [
  ["cpu-reference", () => createBackend({ backend: "cpu-reference" })],
  ["cpu (wasm relaxed SIMD, 2 threads)", () => createBackend({ backend: "cpu", threads: 2, simd: "relaxed" })],
] as const;
const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];
const d = 16;

/** Page bits as stored: u32 for f32 pages, u16 otherwise; after everything queued ran. */
async function pageBits(b: Backend, pool: KvPool): Promise<{ k: Uint32Array | Uint16Array; v: Uint32Array | Uint16Array; specials: number }> {
  await b.read([]);
  const p = cpuPool(pool), buffer = (b as CpuBackend).kernels.buffer(), n = p.numPages * 16 * d;
  const view = (ptr: number) => (p.kvDType === "f32" ? new Uint32Array(buffer, ptr, n) : new Uint16Array(buffer, ptr, n)).slice();
  return { k: view(p.kPtr), v: view(p.vPtr), specials: new Int32Array(buffer, p.specialsPtr, 1)[0] };
}

function bitsOf(dtype: KvDType): (x: number) => number {
  if (dtype === "f16") return f32ToF16Bits;
  if (dtype === "bf16") return f32ToBf16Bits;
  const u = new Uint32Array(1), f = new Float32Array(u.buffer);
  return (x) => ((f[0] = x), u[0]);
}

for (const [name, create] of BACKENDS) {
  describe(`${name}: page memory`, () => {
    for (const kvDType of KV_DTYPES) {
      test(`writeKv and copySlots leave the exact ${kvDType} bits of K and V at any slot; the inf/NaN flag`, async () => {
        const b = await create();
        try {
          const random = new TestRandom(1400 + KV_DTYPES.indexOf(kvDType));
          const numPages = 6, numSlots = numPages * 16;
          const pool = b.createKvPool(numPages, d, kvDType);
          const bits = bitsOf(kvDType);
          // every slot first: finite values
          const k0 = random.floats(numSlots * d, 2), v0 = random.floats(numSlots * d, 2);
          b.writeKv(pool, f32Tensor(b, [numSlots, d], k0, "k"), f32Tensor(b, [numSlots, d], v0, "v"), i32Tensor(b, [numSlots], Array.from({ length: numSlots }, (_, i) => i), "slots"), 0, numSlots);
          const first = await pageBits(b, pool);
          assert.deepEqual(Array.from(first.k), Array.from(k0, bits));
          assert.deepEqual(Array.from(first.v), Array.from(v0, bits));
          assert.equal(first.specials, 0, "finite values: the cheap widening stays allowed");
          // rows of two heads with rounding edge cases to slots at every offset (a quarter skipped), mapping at an offset
          const [T, H] = [11, 2];
          const kRows = roundingFloats(random, T * H * d), vRows = roundingFloats(random, T * H * d).reverse();
          const targets = random.permutation(numSlots);
          const mapping = Int32Array.from({ length: 5 + H * T }, (_, i) => (i < 5 ? targets[numSlots - 1] : random.next() < 0.25 ? -1 : targets[i - 5]));
          b.writeKv(pool, f32Tensor(b, [T, H * d], kRows, "k rows"), f32Tensor(b, [T, H * d], vRows, "v rows"), i32Tensor(b, [mapping.length], mapping, "mapping"), 5, T);
          const wantK = Array.from(k0, bits), wantV = Array.from(v0, bits);
          for (let h = 0; h < H; h++) {
            for (let t = 0; t < T; t++) {
              const slot = mapping[5 + h * T + t];
              if (slot < 0) continue;
              for (let c = 0; c < d; c++) {
                wantK[slot * d + c] = bits(kRows[(t * H + h) * d + c]);
                wantV[slot * d + c] = bits(vRows[(t * H + h) * d + c]);
              }
            }
          }
          // then copies between slots at any offsets, the pairs [2, 6) of 8
          const copies = Array.from({ length: 8 }, () => [random.int(numSlots), random.int(numSlots)]);
          const sources = new Set(copies.slice(2, 6).map(([s]) => s));
          for (const pair of copies) while (sources.has(pair[1])) pair[1] = random.int(numSlots); // no source is a destination
          b.copySlots(pool, i32Tensor(b, [8, 2], copies.flat(), "copies"), 2, 4);
          for (const [src, dst] of copies.slice(2, 6)) {
            for (let c = 0; c < d; c++) {
              wantK[dst * d + c] = wantK[src * d + c];
              wantV[dst * d + c] = wantV[src * d + c];
            }
          }
          const after = await pageBits(b, pool);
          assert.deepEqual(Array.from(after.k), wantK, "K bits");
          assert.deepEqual(Array.from(after.v), wantV, "V bits");
          // the rounding edge cases hold infinities and NaN (and overflow f16): any page type raises the flag
          assert.equal(after.specials, 1, "the flag is raised once a page holds an infinity or NaN");
        } finally {
          b.dispose();
        }
      });

      test(`updatePageBounds keeps each listed ${kvDType} page's min and max over its first n stored keys`, async () => {
        const b = await create();
        try {
          const random = new TestRandom(1410 + KV_DTYPES.indexOf(kvDType));
          const numPages = 5, numSlots = numPages * 16;
          const pool = b.createKvPool(numPages, d, kvDType);
          const keys = random.floats(numSlots * d, 3);
          b.writeKv(pool, f32Tensor(b, [numSlots, d], keys, "k"), f32Tensor(b, [numSlots, d], keys, "v"), i32Tensor(b, [numSlots], Array.from({ length: numSlots }, (_, i) => i), "slots"), 0, numSlots);
          const list = [[4, 16], [1, 7], [3, 1], [0, 16], [2, 9]];
          b.updatePageBounds(pool, i32Tensor(b, [list.length, 2], list.flat(), "pages"), 1, 3); // pages 1, 3, 0
          await b.read([]);
          const p = cpuPool(pool);
          const bounds = new Float32Array((b as CpuBackend).kernels.buffer(), p.boundsPtr, numPages * 2 * d);
          const round = roundToKv(kvDType);
          for (const [page, n] of list.slice(1, 4)) {
            for (let c = 0; c < d; c++) {
              const column = Array.from({ length: n }, (_, o) => round(keys[(page * 16 + o) * d + c]));
              assert.equal(bounds[page * 2 * d + c], Math.min(...column), `page ${page} channel ${c}: min`);
              assert.equal(bounds[page * 2 * d + d + c], Math.max(...column), `page ${page} channel ${c}: max`);
            }
          }
        } finally {
          b.dispose();
        }
      });
    }

    test("a new tensor takes a destroyed one's memory and is zeroed there", async () => {
      const b = await create();
      try {
        const old = f32Tensor(b, [256], new Float32Array(256).fill(3), "old") as CpuTensor;
        await b.read([{ tensor: old }]);
        b.destroyTensor(old);
        await b.read([]);
        const fresh = b.createTensor([64], "i32", "new") as CpuTensor;
        assert.equal(fresh.ptr, old.ptr, "first fit puts it where the old one was");
        const [got] = await b.read([{ tensor: fresh }]);
        assert.ok(got.every((x) => x === 0));
      } finally {
        b.dispose();
      }
    });
  });
}
