/**
 * @module kvcache/sequenceCache.test
 *
 * A sequence's heads together: the flat layouts [L, H, numNew] of slot
 * mappings and flags, promotions concatenated per layer in head order, table
 * updates per head, atomic appends across heads, accounting (resident, peak,
 * full-attention bytes, admitted counts by head) and release order, with
 * exact page ids.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRandom } from "../util/random.js";
import { BlockPool } from "./blockPool.js";
import { CacheInvariantError, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { SequenceCache, type SequenceCacheConfig } from "./sequenceCache.js";
import { randomFlags, randomInt } from "./testing.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const config = (numLayers: number, numKvHeads: number, window = 16): SequenceCacheConfig => ({ numLayers, numKvHeads, headDim: 4, bytesPerElement: 4, window });

/**
 * L = 2, H = 3, W = 16 after positions 0..17: head (l, h) admitted position h of 0..2,
 * and head (1, 2) all three. Returns the cache and the plan of the last step (16, 17).
 */
function twoLayersThreeHeads(pool: BlockPool) {
  const cache = new SequenceCache(pool, config(2, 3));
  const first = cache.append(3);
  const flags = new Uint8Array(2 * 3 * 3);
  for (let l = 0; l < 2; l++) for (let h = 0; h < 3; h++) flags[(l * 3 + h) * 3 + h] = 1;
  flags.fill(1, (1 * 3 + 2) * 3, (1 * 3 + 3) * 3);
  cache.commitFlags(flags, 3);
  cache.append(13);
  cache.commitFlags(new Uint8Array(6 * 13), 13);
  const needed = cache.numPagesNeeded(2);
  const last = cache.append(2);
  return { cache, first, needed, last };
}

test("a step's slot mapping is [L, H, numNew] head-major; each head's first page is its ring entry 0", () => {
  const pool = new BlockPool(64);
  const { first } = twoLayersThreeHeads(pool);
  assert.equal(first.numNew, 3);
  // heads (0,0), (0,1), (0,2), (1,0), (1,1), (1,2) took pages 1..6 in that order
  assert.deepEqual(Array.from(first.slotMapping), range(0, 6).flatMap((k) => [16 * (k + 1), 16 * (k + 1) + 1, 16 * (k + 1) + 2]));
  assert.deepEqual(first.tableUpdates, range(1, 7).map((page) => [{ index: 0, page }]));
  assert.deepEqual(first.promotions.map((p) => p.numCopies), [0, 0]);
});

test("flags [L, H, numNew] reach their heads; promotions are concatenated per layer in head order", () => {
  const pool = new BlockPool(64);
  const { cache, needed, last } = twoLayersThreeHeads(pool);
  assert.deepEqual(cache.numAdmittedByHead(), [[1, 1, 1], [1, 1, 3]]);
  // positions 16, 17 push out 0 and 1: every head but (0, 2) promotes and opens a global page
  assert.equal(needed, 5);
  assert.deepEqual(Array.from(last.slotMapping), range(0, 6).flatMap((k) => [16 * (k + 1), 16 * (k + 1) + 1]));
  assert.deepEqual(last.tableUpdates, [[{ index: 1, page: 7 }], [{ index: 1, page: 8 }], [], [{ index: 1, page: 9 }], [{ index: 1, page: 10 }], [{ index: 1, page: 11 }]]);
  const [layer0, layer1] = last.promotions;
  assert.deepEqual([Array.from(layer0!.fromSlots), Array.from(layer0!.toSlots)], [[16, 33], [112, 128]]);
  assert.deepEqual([Array.from(layer1!.fromSlots), Array.from(layer1!.toSlots)], [[64, 81, 96, 97], [144, 160, 176, 177]]);
  assert.deepEqual(Array.from(cache.head(1, 2).globalPositions), [0, 1]);
  assert.deepEqual(Array.from(cache.head(0, 2).globalPositions), []);
  assert.equal(cache.head(0, 1).ringAdmitted[1], 0, "position 17 overwrote offset 1 unflagged");
  cache.commitFlags(new Uint8Array(12), 2);
  cache.checkInvariants();
});

test("accounting: resident and peak bytes by whole pages, full attention bytes, admitted and global counts", () => {
  const pool = new BlockPool(64);
  const { cache } = twoLayersThreeHeads(pool);
  cache.commitFlags([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 2); // a plain array works too: (0,0) admits 16, (1,2) admits 17
  assert.equal(cache.bytesPerToken, 2 * 4 * 4);
  assert.equal(cache.numTokens, 18);
  assert.equal(cache.numPagesHeld, 11);
  assert.deepEqual(cache.stats(), {
    numTokens: 18, numPagesHeld: 11, residentBytes: 11 * 16 * 32, peakBytes: 11 * 16 * 32,
    fullAttentionBytes: 18 * 6 * 32, numAdmitted: 10, numGlobalTokens: 6,
  });
  assert.deepEqual(cache.numAdmittedByHead(), [[2, 1, 1], [1, 1, 4]]);
  // evicting head (0, 0)'s only global token frees its page; the peak stays
  assert.equal(cache.dropGlobal(0, 0, [0]).numCopies, 0);
  assert.equal(cache.residentBytes, 10 * 16 * 32);
  assert.equal(cache.peakBytes, 11 * 16 * 32);
  assert.equal(cache.stats().numAdmitted, 10);
  assert.equal(cache.stats().numGlobalTokens, 5);
  // release: each head frees its ring page, then its global pages, at the head of the free list
  cache.release();
  assert.deepEqual(pool.freeQueue().slice(0, 12), [11, 6, 10, 5, 9, 4, 3, 8, 2, 1, 7, 12]);
  assert.equal(pool.numFreePages, pool.numUsablePages);
  assert.deepEqual([cache.numPagesHeld, cache.residentBytes, cache.peakBytes, cache.numTokens], [0, 0, 11 * 16 * 32, 0]);
  cache.checkInvariants();
  pool.checkInvariants();
});

test("an append some heads cannot hold throws before any head changes", () => {
  const pool = new BlockPool(6); // 5 usable
  const a = new SequenceCache(pool, config(1, 2));
  const b = new SequenceCache(pool, config(1, 2));
  a.append(16);
  a.commitFlags(new Uint8Array(32).fill(1), 16);
  b.append(16);
  b.commitFlags(new Uint8Array(32), 16);
  assert.equal(a.numPagesNeeded(1), 2); // both heads promote position 0
  assert.throws(() => a.append(1), (err: unknown) => err instanceof OutOfPagesError && err.numRequested === 2 && err.numFree === 1);
  assert.equal(pool.numFreePages, 1, "head 0 did not take the free page");
  assert.deepEqual([a.numTokens, a.head(0, 0).numGlobalTokens, a.head(0, 1).numGlobalTokens], [16, 0, 0]);
  assert.equal(b.numPagesNeeded(1), 0);
  b.append(1);
  b.commitFlags([0, 0], 1);
  b.release();
  a.append(1);
  pool.checkInvariants();
});

test("config and index errors", () => {
  const pool = new BlockPool(8);
  for (const field of ["numLayers", "numKvHeads", "headDim", "bytesPerElement"] as const) {
    for (const bad of [0, -1, 1.5]) {
      assert.throws(() => new SequenceCache(pool, { ...config(1, 1), [field]: bad }), (err: unknown) => {
        assert.ok(err instanceof InvalidCacheConfigError);
        assert.equal(err.field, field);
        assert.equal(err.message, `KV cache ${field} must be a positive integer, got ${bad}`);
        return true;
      });
    }
  }
  assert.throws(() => new SequenceCache(pool, config(1, 1, 40)), (err: unknown) => err instanceof InvalidCacheConfigError && err.field === "window");
  const cache = new SequenceCache(pool, config(2, 2));
  assert.throws(() => cache.head(2, 0), /no head \(2, 0\)/);
  assert.throws(() => cache.head(0, -1), CacheInvariantError);
  assert.throws(() => cache.dropGlobal(0, 2, []), CacheInvariantError);
  cache.append(2);
  assert.throws(() => cache.commitFlags(new Uint8Array(6), 2), /commitFlags: flags must be \[numLayers, numKvHeads, numNew\]/);
  // NOTE: one step may run ahead of the flags (headCache.ts); a second may not
  cache.append(1);
  assert.equal(cache.canAppendBeforeFlags(1), false);
  assert.throws(() => cache.append(1), /never committed/);
});

test("numPagesNeeded is the pool's exact drop over random per-head flags and chunks", () => {
  const random = createRandom(5);
  const pool = new BlockPool(600);
  const cache = new SequenceCache(pool, config(2, 3, 32));
  for (let step = 0; step < 80; step++) {
    const numNew = random() < 0.5 ? 1 : randomInt(random, 1, 32);
    const needed = cache.numPagesNeeded(numNew);
    const free = pool.numFreePages;
    const plan = cache.append(numNew);
    assert.equal(free - pool.numFreePages, needed);
    assert.equal(plan.tableUpdates.reduce((n, u) => n + u.length, 0), needed);
    cache.commitFlags(randomFlags(random, 6 * numNew, 0.5), numNew);
  }
  cache.checkInvariants();
  assert.equal(cache.numPagesHeld, pool.numOwnedPages);
});
