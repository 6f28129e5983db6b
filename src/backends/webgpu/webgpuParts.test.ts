/**
 * Memory larger than one storage binding on the WebGPU backend, made small
 * with maxBindingBytes so lavapipe runs it: KV pools in layer groups of
 * parts (gpuPool.ts) and weights in row parts. The page bits are read back
 * from the buffers: every write and copy is exact, bit for bit (f32
 * subnormals and NaN payloads included: moves and 16-bit rounding are done
 * on integer bits, so GPUs that flush subnormals in float arithmetic keep
 * them); and an architecture fixture runs with its pool and weights split.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { KvDType } from "../backend.js";
import { Model } from "../../engine/model.js";
import { createFolderSource } from "../../platform/node/fileSource.js";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";
import { runPrompt } from "../../testing/engineRun.js";
import { archDir, readJson, relativeL2, type ArchReference } from "../../testing/fixtures.js";
import { f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import { PAGE_SIZE } from "../stepLayout.js";
import type { WebGpuBackend } from "./webgpuBackend.js";
import { pagePairBytes, type GpuPool } from "./gpuPool.js";
import { gpu } from "./gpuTensor.js";

const d = 8;
const NUM_LAYERS = 4;
const PAGES = 64;

/** f32 bits worth checking: subnormals, NaN payloads, signed zeros, infinities, rounding ties. */
function specialBits(n: number, seed: number): Uint32Array {
  const fixed = [0x00000001, 0x80000001, 0x007fffff, 0x80400000, 0x7fc00001, 0xffa12345, 0x7f800001, 0x80000000, 0x7f800000, 0xff800000, 0x3f808000, 0x3f818000, 0x477fe000, 0x477ff000, 0x387fc000, 0x33800000];
  const out = new Uint32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) out[i] = i < fixed.length ? fixed[i] : (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  return out;
}

/** Stored bits of f32 bits `b` in a page of `dtype` (util/halfFloat.ts's rounding). */
function storedBits(b: number, dtype: KvDType): number {
  if (dtype === "f32") return b >>> 0;
  const x = new Float32Array(new Uint32Array([b]).buffer)[0];
  // NOTE: a NaN's payload is lost in a JS number; the device keeps the top bits of it, as f32ToBf16Bits does from bits
  if ((b & 0x7fffffff) > 0x7f800000) return dtype === "bf16" ? ((b >>> 16) | 0x40) & 0xffff : ((b >>> 16) & 0x8000) | 0x7e00;
  return dtype === "bf16" ? f32ToBf16Bits(x) : f32ToF16Bits(x);
}

for (const kvDType of ["f32", "f16", "bf16"] as const) {
  test(`KV pool of ${kvDType} pages in layer groups: writeKv and copySlots exact to the bit in every part; other slots untouched`, async () => {
    const limit = Math.ceil(PAGES / 4) * pagePairBytes(d, kvDType);
    const b = await createNodeWebGpuBackend({ maxBindingBytes: limit });
    try {
      const pool = b.createKvPool(PAGES, d, kvDType, NUM_LAYERS) as GpuPool;
      assert.equal(pool.numGroups, 4);
      assert.equal(pool.parts.length, 4);
      const wpr = kvDType === "f32" ? d : d / 2;
      // a row per page of every group, from one writeKv; the mapping [H=1, T]
      const T = 12;
      const slots = Int32Array.from({ length: T }, (_, t) => (t === 5 ? -1 : ((t * 5 + 1) % PAGES) * PAGE_SIZE + (t % PAGE_SIZE)));
      const kBits = specialBits(T * d, 1), vBits = specialBits(T * d, 2).reverse();
      const k = b.createTensor([T, d], "f32", "k"), v = b.createTensor([T, d], "f32", "v"), map = b.createTensor([T], "i32", "slots");
      b.write(k, new Float32Array(kBits.buffer));
      b.write(v, new Float32Array(vBits.buffer));
      b.write(map, slots);
      b.writeKv(pool, k, v, map, 0, T);
      // copies inside groups: page 1 slot -> page 2 slot (group 0), page 17 -> 18 (group 1)
      const copies = b.createTensor([2, 2], "i32", "copies");
      const pairs = [slots[0], 2 * PAGE_SIZE + 3, slots[4], 30 * PAGE_SIZE + 15];
      b.write(copies, Int32Array.from(pairs));
      b.copySlots(pool, copies, 0, 2);
      const got = await b.readKvPages(pool, 0, PAGES);
      const want = { k: new Uint32Array(PAGES * PAGE_SIZE * wpr), v: new Uint32Array(PAGES * PAGE_SIZE * wpr) };
      const put = (into: Uint32Array, slot: number, bits: Uint32Array, row: number) => {
        for (let c = 0; c < d; c++) {
          const s = storedBits(bits[row * d + c], kvDType);
          if (kvDType === "f32") into[slot * wpr + c] = s;
          else into[slot * wpr + (c >> 1)] |= s << (16 * (c & 1));
        }
      };
      slots.forEach((slot, t) => {
        if (slot < 0) return;
        put(want.k, slot, kBits, t);
        put(want.v, slot, vBits, t);
      });
      for (let i = 0; i < pairs.length; i += 2) {
        want.k.copyWithin(pairs[i + 1] * wpr, pairs[i] * wpr, (pairs[i] + 1) * wpr);
        want.v.copyWithin(pairs[i + 1] * wpr, pairs[i] * wpr, (pairs[i] + 1) * wpr);
      }
      for (const side of ["k", "v"] as const) {
        for (let i = 0; i < want[side].length; i++) {
          if (got[side][i] !== want[side][i]) assert.fail(`${side} word ${i} (slot ${Math.floor(i / wpr)}): 0x${got[side][i].toString(16)}, expected 0x${want[side][i].toString(16)}`);
        }
      }
      b.destroyKvPool(pool);
    } finally {
      b.dispose();
    }
  });
}

test("llama3-scaled with its KV pool in layer groups and its embedding and lm_head in row parts matches transformers", async () => {
  const name = "llama3-scaled";
  const ref = readJson<ArchReference>(join(archDir(name), "reference.json"));
  // NOTE: the fixture's embedding and lm_head are 128 KiB each (512 x 64 f32)
  const backend = await createNodeWebGpuBackend({ maxBindingBytes: 48 << 10 });
  const model = await Model.load(createFolderSource(archDir(name)), backend, { ropeFreqDType: "bf16", kvMemory: 80 << 10, kvDType: "f32" });
  try {
    const storage = model.engine.kv.storage as GpuPool;
    assert.equal(storage.numGroups, model.config.numLayers);
    assert.ok((gpu(model.parts.weights.embedTokens).parts?.length ?? 1) > 1, "the embedding is in parts");
    assert.ok((gpu(model.parts.weights.lmHead).parts?.length ?? 1) > 1, "lm_head is in parts");
    for (const singleTokenFrom of [undefined, Math.floor(ref.input_ids.length / 2)]) {
      const run = await runPrompt(model, ref.input_ids, { singleTokenFrom });
      assert.deepEqual(run.argmax, ref.argmax);
      assert.ok(relativeL2(run.last, ref.last_logits) < 1e-3);
    }
    const greedy = await runPrompt(model, ref.input_ids, { maxNewTokens: ref.greedy_ids.length, logitsFrom: ref.input_ids.length, kv: { window: 16, admission: "random:0.5" } });
    assert.equal(greedy.result.tokenIds.length, ref.greedy_ids.length);
    model.engine.kv.checkInvariants();
    void (backend as WebGpuBackend);
  } finally {
    model.dispose();
  }
});
