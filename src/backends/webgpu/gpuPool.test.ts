/**
 * Which parts of a split KV pool a list of slots touches: the bitmask path
 * (up to 30 parts) and the set path (more) against a plain count.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PAGE_SIZE } from "../stepLayout.js";
import { partsTouched, type GpuPool } from "./gpuPool.js";

test("partsTouched lists the parts of the listed slots and pages, ascending, skipping negative ids", () => {
  let seed = 5;
  const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (const numParts of [1, 2, 7, 30, 31, 40]) {
    const pagesPerGroup = 3;
    const pool = { parts: Array.from({ length: numParts }, () => ({})), pagesPerGroup } as unknown as GpuPool;
    for (const perPage of [1, PAGE_SIZE]) {
      for (let trial = 0; trial < 20; trial++) {
        const ids = Int32Array.from({ length: 64 }, () => (next() < 0.2 ? -1 : Math.floor(next() * numParts * pagesPerGroup * perPage)));
        const [first, count, stride, width] = [1 + Math.floor(next() * 4), Math.floor(next() * 6), 2 + Math.floor(next() * 4), 1 + Math.floor(next() * 2)];
        const want = new Set<number>();
        for (let i = 0; i < count; i++) for (let j = 0; j < width; j++) if (ids[first + i * stride + j] >= 0) want.add(Math.floor(ids[first + i * stride + j] / perPage / pagesPerGroup));
        const expected = numParts === 1 ? [0] : [...want].sort((a, b) => a - b);
        assert.deepEqual([...partsTouched(pool, ids, first, count, stride, width, perPage)], expected, `${numParts} parts, ${perPage} per page`);
      }
    }
    assert.deepEqual([...partsTouched(pool, null, 0, 1, 1, 1, 1)], Array.from({ length: numParts }, (_, i) => i), "all parts of an unknown list");
  }
});
