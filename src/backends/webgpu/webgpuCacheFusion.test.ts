/**
 * A layer's slot copies fused with the writeKv after them (cacheOps.ts,
 * copyThenWriteKvKernel) leave the pool's pages with the bits of the two
 * ops one after the other: rows written into the slots the copies empty
 * (a decode step's ring), into a copy's destination, and elsewhere; -1
 * slots; in one pool part and across parts (where the fusion stands aside),
 * for f32, f16 and bf16 pages.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";
import { PAGE_SIZE } from "../stepLayout.js";
import { pagePairBytes } from "./gpuPool.js";

const d = 16;
const PAGES = 32;
const NUM_LAYERS = 2;

function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

for (const kvDType of ["f32", "f16", "bf16"] as const) {
  for (const split of [false, true]) {
    test(`copySlots then writeKv, ${kvDType} pages${split ? ", pool in parts" : ""}: fused gives the bits of the two ops`, async () => {
      const b = await createNodeWebGpuBackend(split ? { maxBindingBytes: (PAGES / 2) * pagePairBytes(d, kvDType) } : {});
      try {
        const r = random(kvDType.length + (split ? 10 : 0));
        const H = 2, T = 3;
        const [kRows, vRows] = [Float32Array.from({ length: T * H * d }, r), Float32Array.from({ length: T * H * d }, r)];
        // layer 1's pages: [16, 32) (the second part when split)
        const slot = (page: number, at: number) => (16 + page) * PAGE_SIZE + at;
        // copies (src -> dst): 0, 1 are emptied by rows written into them (the ring), 2's destination takes a row, 3 is alone
        const copies = Int32Array.of(slot(0, 3), slot(5, 0), slot(1, 7), slot(5, 1), slot(2, 2), slot(6, 4), slot(3, 9), slot(6, 5));
        // slots [H, T]: head 0's rows into copy 0's source, -1, copy 2's destination; head 1's into copy 1's source and two free slots
        const slots = Int32Array.of(slot(0, 3), -1, slot(6, 4), slot(1, 7), slot(7, 0), slot(7, 1));
        const run = async (fuse: boolean, crossParts: boolean) => {
          b.kernels.fuse = fuse;
          const pool = b.createKvPool(PAGES, d, kvDType, NUM_LAYERS);
          const fill = b.createTensor([PAGES * PAGE_SIZE, H * d], "f32", "fill"), all = b.createTensor([H * PAGES * PAGE_SIZE], "i32", "all slots");
          // every slot of every page holds rows first (so a copy's or a row's mistake shows)
          const n = PAGES * PAGE_SIZE;
          b.write(fill, Float32Array.from({ length: n * H * d }, random(99)));
          b.write(all, Int32Array.from({ length: H * n }, (_, i) => (i < n ? i : -1)));
          b.writeKv(pool, fill, fill, all, 0, n);
          const [k, v] = [b.createTensor([T, H * d], "f32", "k"), b.createTensor([T, H * d], "f32", "v")];
          const [c, m] = [b.createTensor([copies.length], "i32", "copies"), b.createTensor([slots.length + 2], "i32", "slots")];
          b.write(k, kRows);
          b.write(v, vRows);
          // a copy across layers' pages makes the list span two parts when split
          b.write(c, crossParts ? Int32Array.of(...copies.slice(0, 6), 2 * PAGE_SIZE, 3 * PAGE_SIZE) : copies);
          // the layer's slots at offset 2
          b.write(m, Int32Array.of(0, 0, ...slots));
          b.copySlots(pool, c, 0, copies.length / 2);
          b.writeKv(pool, k, v, m, 2, T);
          const pages = await b.readKvPages(pool, 0, PAGES);
          b.destroyKvPool(pool);
          for (const t of [fill, all, k, v, c, m]) b.destroyTensor(t);
          return pages;
        };
        for (const crossParts of [false, true]) {
          const one = await run(false, crossParts);
          const fused = await run(true, crossParts);
          assert.deepEqual(fused.k, one.k, `K bits${crossParts ? " (copies across parts)" : ""}`);
          assert.deepEqual(fused.v, one.v, `V bits${crossParts ? " (copies across parts)" : ""}`);
        }
      } finally {
        b.dispose();
      }
    });
  }
}
