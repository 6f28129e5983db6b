/**
 * @module kvcache/headCache.test
 *
 * One (layer, KV head) cache through the two-phase step API, with exact page
 * ids: `append(numNew)` plans a step (slot mapping, promotions of admitted
 * tokens leaving the window, table updates for every page it allocated) and
 * `commitFlags` records the new tokens' flags, which the next append needs
 * (or the one after it, for a step planned while the last one runs).
 * Also eviction's compaction, release, peak and the exactness of
 * numPagesNeeded. The visibility rule itself is checked in
 * headCacheVisibility.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRandom } from "../util/random.js";
import { BlockPool } from "./blockPool.js";
import { CacheInvariantError, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { HeadCache } from "./headCache.js";
import { bruteForceVisible, randomFlags, randomInt, SimulatedKvStore } from "./testing.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
/** [n] flags with 1 at the given indices. */
const flagsAt = (n: number, ones: readonly number[]) => {
  const out = new Uint8Array(n);
  for (const i of ones) out[i] = 1;
  return out;
};
const ones = (n: number) => new Uint8Array(n).fill(1);

test("a window that is not a positive multiple of 16 is refused", () => {
  const pool = new BlockPool(8);
  assert.throws(() => new HeadCache(pool, 100), (err: unknown) => {
    assert.ok(err instanceof InvalidCacheConfigError);
    assert.equal(err.field, "window");
    assert.equal(err.message, "local window W must be a positive multiple of the page size 16, got 100 (try 96 or 112)");
    return true;
  });
  for (const bad of [0, -16, 8, 16.5, NaN]) assert.throws(() => new HeadCache(pool, bad), InvalidCacheConfigError);
  assert.equal(new HeadCache(pool, 16).window, 16);
});

test("steps within the window: ring pages allocated lazily at entries 0, 1; exact slots; no promotions", () => {
  const pool = new BlockPool(16);
  const head = new HeadCache(pool, 32);
  assert.deepEqual([5, 16, 17, 32].map((n) => head.numPagesNeeded(n)), [1, 1, 2, 2]);

  const first = head.append(5);
  assert.deepEqual(Array.from(first.slotMapping), range(16, 21)); // page 1, offsets 0..4
  assert.equal(first.promotions.numCopies, 0);
  assert.deepEqual(first.tableUpdates, [{ index: 0, page: 1 }]);
  assert.deepEqual(head.ringPageIds, [1]);
  assert.equal(head.numTokens, 5);
  assert.equal(head.numRingTokens, 5);
  assert.equal(head.hasPendingFlags, true);
  assert.deepEqual(Array.from(head.ringPositions), [...range(0, 5), ...new Array(27).fill(-1)]);
  head.commitFlags([1, 0, 0, 1, 0]);
  assert.equal(head.hasPendingFlags, false);
  assert.equal(head.numAdmittedTotal, 2);
  assert.equal(head.numGlobalTokens, 0);

  assert.equal(head.numPagesNeeded(20), 1);
  const second = head.append(20); // positions 5..24
  assert.deepEqual(Array.from(second.slotMapping), [...range(21, 32), ...range(32, 41)]); // page 1 offsets 5..15, page 2 offsets 0..8
  assert.equal(second.promotions.numCopies, 0);
  assert.deepEqual(second.tableUpdates, [{ index: 1, page: 2 }]);
  head.commitFlags(flagsAt(20, [7 - 5, 20 - 5])); // positions 7 and 20 admitted
  assert.equal(head.numAdmittedTotal, 4);
  assert.equal(head.numPagesHeld, 2);
  head.checkInvariants();
});

test("tokens leaving the window are promoted exactly when admitted, before their ring slots are reused", () => {
  const pool = new BlockPool(16);
  const head = new HeadCache(pool, 32);
  head.append(5);
  head.commitFlags([1, 0, 0, 1, 0]); // 0 and 3 admitted
  head.append(20);
  head.commitFlags(flagsAt(20, [2, 15])); // 7 and 20 admitted
  // positions 25..40: 0..8 leave the window; of those 0, 3, 7 were admitted
  assert.equal(head.numPagesNeeded(16), 1);
  assert.equal(head.numPagesNeeded(7), 0); // ends at 32: nothing leaves
  const step = head.append(16);
  assert.deepEqual(Array.from(step.slotMapping), [...range(41, 48), ...range(16, 25)]); // 25..31 on page 2, 32..40 wrap to page 1
  assert.deepEqual(Array.from(step.promotions.fromSlots), [16, 19, 23]); // ring offsets 0, 3, 7 on page 1
  assert.deepEqual(Array.from(step.promotions.toSlots), [48, 49, 50]); // global page 3, offsets 0..2
  assert.deepEqual(step.tableUpdates, [{ index: 2, page: 3 }]); // global index 0 sits at W/16 + 0
  assert.deepEqual(head.globalPageIds, [3]);
  assert.deepEqual(Array.from(head.globalPositions), [0, 3, 7]);
  assert.deepEqual(Array.from(head.ringPositions), [...range(32, 41), ...range(9, 32)]);
  // offset 20 still holds admitted position 20; offsets 0..8 hold new, unflagged tokens
  assert.deepEqual(range(0, 32).filter((r) => head.ringAdmitted[r]), [20]);
  assert.equal(head.numPagesHeld, 3);
  assert.equal(head.numPeakPages, 3);
  assert.equal(head.numPagesSettled, 3);
  head.commitFlags(new Uint8Array(16));
  head.checkInvariants();
  pool.checkInvariants();
});

test("a global page holds 16 tokens; the 17th promotion opens the next page at entry W/16 + 1", () => {
  const pool = new BlockPool(8);
  const head = new HeadCache(pool, 16);
  head.append(16);
  head.commitFlags(ones(16));
  for (let k = 0; k < 16; k++) {
    assert.equal(head.numPagesNeeded(1), k === 0 ? 1 : 0);
    const step = head.append(1); // position 16 + k promotes position k
    assert.deepEqual(Array.from(step.slotMapping), [16 + k]);
    assert.deepEqual([...step.promotions.fromSlots, ...step.promotions.toSlots], [16 + k, 32 + k]);
    assert.deepEqual(step.tableUpdates, k === 0 ? [{ index: 1, page: 2 }] : []);
    head.commitFlags([1]);
  }
  assert.equal(head.numPagesNeeded(1), 1);
  const step = head.append(1); // position 32 promotes position 16 from ring offset 0
  assert.deepEqual([...step.promotions.fromSlots, ...step.promotions.toSlots], [16, 48]);
  assert.deepEqual(step.tableUpdates, [{ index: 2, page: 3 }]);
  assert.deepEqual(head.globalPageIds, [2, 3]);
  assert.deepEqual(Array.from(head.globalPositions), range(0, 17));
  head.commitFlags([0]);
  head.checkInvariants();
});

test("unadmitted tokens leaving the window are dropped: local-only holds one ring and never promotes", () => {
  const pool = new BlockPool(4);
  const head = new HeadCache(pool, 16);
  for (let i = 0; i < 10; i++) {
    const step = head.append(i === 0 ? 16 : 9);
    assert.equal(step.promotions.numCopies, 0);
    assert.equal(step.tableUpdates.length, i === 0 ? 1 : 0);
    head.commitFlags(new Uint8Array(step.slotMapping.length));
  }
  assert.equal(head.numTokens, 97);
  assert.equal(head.numPagesHeld, 1);
  assert.equal(head.numGlobalTokens, 0);
  assert.equal(head.numAdmittedTotal, 0);
  head.checkInvariants();
});

test("one step may be appended before the last step's flags, when none of its leaving tokens awaits them; flags commit oldest first", () => {
  const pool = new BlockPool(8);
  const head = new HeadCache(pool, 16);
  head.append(5);
  head.append(1);
  assert.equal(head.numPendingSteps, 2);
  assert.throws(() => head.append(1), /the earlier steps' admit flags were never committed/);
  assert.throws(() => head.numPagesNeeded(1), CacheInvariantError);
  assert.throws(() => head.commitFlags([1, 0, 0]), /^CacheInvariantError: commitFlags: 3 flags for 5 pending tokens$/);
  assert.equal(head.numTokens, 6, "a refused append changes nothing");
  head.commitFlags([0, 0, 1, 0, 0]);
  head.commitFlags([1]);
  assert.throws(() => head.commitFlags([1]), /commitFlags: 1 flags for 0 pending tokens/);
  assert.equal(head.numAdmittedTotal, 2);
  assert.deepEqual([...head.ringAdmitted.subarray(0, 6)], [0, 0, 1, 0, 0, 1]);
  // NOTE: a step whose leaving token (position 0 of a full ring) has no flag yet must wait for it
  const full = new HeadCache(pool, 16);
  full.append(16);
  assert.equal(full.canAppendBeforeFlags(1), false);
  assert.throws(() => full.append(1), /the earlier steps' admit flags were never committed/);
  full.commitFlags(ones(16));
  full.append(1);
  assert.equal(full.canAppendBeforeFlags(1), true);
  assert.equal(full.canAppendBeforeFlags(17), false, "a step longer than W never waits for flags");
});

test("single-token steps planned one step ahead give the slots, promotions and pages of steps planned after each commit", () => {
  const random = createRandom(11);
  for (const W of [16, 32]) {
    const [poolA, poolB] = [new BlockPool(64), new BlockPool(64)];
    const [now, ahead] = [new HeadCache(poolA, W), new HeadCache(poolB, W)];
    const flags = Array.from({ length: 120 }, () => (random() < 0.3 ? 1 : 0));
    let late: number | null = null;
    for (const f of flags) {
      const a = now.append(1);
      now.commitFlags([f]);
      const b = ahead.append(1);
      // NOTE: the last step's flag commits only now, after the next step was planned
      if (late !== null) ahead.commitFlags([late]);
      late = f;
      assert.deepEqual(b, a);
    }
    ahead.commitFlags([late!]);
    const state = (h: HeadCache, pool: BlockPool) => [h.numTokens, h.ringPageIds, h.globalPageIds, [...h.globalPositions], [...h.ringPositions], [...h.ringAdmitted], h.numAdmittedTotal, h.numPeakPages, pool.numFreePages];
    assert.deepEqual(state(ahead, poolB), state(now, poolA));
    ahead.checkInvariants();
    // NOTE: a step taken back (its sequence ended before it) leaves the head, its pages and peak as before it
    ahead.append(1);
    ahead.undoLastAppend();
    assert.deepEqual(state(ahead, poolB), state(now, poolA));
    assert.throws(() => ahead.undoLastAppend(), /the last change was not a pending one-token append/);
  }
});

test("a step appends at most W tokens", () => {
  const head = new HeadCache(new BlockPool(8), 16);
  assert.throws(() => head.append(17), /^CacheInvariantError: a step appends at most W = 16 tokens, got 17$/);
  assert.throws(() => head.numPagesNeeded(17), CacheInvariantError);
  assert.equal(head.numTokens, 0);
  assert.equal(head.append(16).slotMapping.length, 16);
});

test("an append the pool cannot hold throws OutOfPagesError and changes nothing", () => {
  const pool = new BlockPool(2); // one usable page
  const a = new HeadCache(pool, 16);
  const b = new HeadCache(pool, 16);
  a.append(16);
  a.commitFlags(flagsAt(16, [0]));
  assert.throws(() => b.append(1), (err: unknown) => err instanceof OutOfPagesError && err.numRequested === 1 && err.numFree === 0);
  assert.deepEqual([b.numTokens, b.numPagesHeld, b.hasPendingFlags], [0, 0, false]);
  const ring = Array.from(a.ringPositions);
  assert.throws(() => a.append(1), OutOfPagesError); // position 16 would promote admitted position 0
  assert.deepEqual([a.numTokens, a.numPagesHeld, a.hasPendingFlags, a.numGlobalTokens], [16, 1, false, 0]);
  assert.deepEqual(Array.from(a.ringPositions), ring);
  assert.equal(a.ringAdmitted[0], 1);
  a.release();
  assert.deepEqual(b.append(1).tableUpdates, [{ index: 0, page: 1 }]);
  pool.checkInvariants();
});

/** W = 16 head holding 56 tokens, global positions 0..39 on pages [2, 3, 4]; flags of 48..55 committed as 0. */
function headWithFortyGlobal(pool: BlockPool, store: SimulatedKvStore): HeadCache {
  const head = new HeadCache(pool, 16);
  for (const [numNew, flags] of [[16, ones(16)], [16, ones(16)], [16, ones(16)], [8, new Uint8Array(8)]] as const) {
    const start = head.numTokens;
    const step = head.append(numNew);
    store.copy(step.promotions);
    store.write(step.slotMapping, start);
    head.commitFlags(flags);
  }
  return head;
}

test("dropGlobal fills holes below the kept count from kept tokens above it and frees emptied trailing pages", () => {
  const pool = new BlockPool(16);
  const store = new SimulatedKvStore(pool.numPages);
  const head = headWithFortyGlobal(pool, store);
  assert.deepEqual(head.ringPageIds, [1]);
  assert.deepEqual(head.globalPageIds, [2, 3, 4]);
  assert.deepEqual(Array.from(head.globalPositions), range(0, 40));

  const moves = head.dropGlobal([39, 1, 2, 20, 33, 35, 36, 38]);
  // 32 kept: holes 1, 2, 20 take kept tokens 32, 34, 37 (page 4 offsets 0, 2, 5)
  assert.deepEqual(Array.from(moves.fromSlots), [64, 66, 69]);
  assert.deepEqual(Array.from(moves.toSlots), [33, 34, 52]);
  store.copy(moves);
  assert.deepEqual(head.globalPageIds, [2, 3]);
  assert.deepEqual(pool.freeQueue(), range(4, 16)); // the emptied page is reused first
  assert.deepEqual(Array.from(head.globalPositions), [0, 32, 34, ...range(3, 20), 37, ...range(21, 32)]);
  const dropped = [1, 2, 20, 33, 35, 36, 38, 39];
  assert.deepEqual(store.readVisible(head), range(0, 56).filter((p) => !dropped.includes(p)));
  assert.equal(head.numAdmittedTotal, 48, "evicted tokens still count as admitted");
  head.checkInvariants();

  // the next promotion (position 40, admitted) lands at global index 32: a new page, the one just freed
  const step = head.append(1);
  assert.deepEqual(step.tableUpdates, [{ index: 1 + 2, page: 4 }]);
  assert.deepEqual([...step.promotions.fromSlots, ...step.promotions.toSlots], [16 + 8, 64]);
  head.commitFlags([0]);

  assert.equal(head.dropGlobal([]).numCopies, 0);
  assert.equal(head.dropGlobal([32]).numCopies, 0, "dropping the last token moves nothing");
  assert.deepEqual(head.globalPageIds, [2, 3]);
  assert.deepEqual(pool.freeQueue().slice(0, 2), [4, 5]);
  for (const bad of [[32], [-1], [1.5], [0, 0]]) assert.throws(() => head.dropGlobal(bad), /dropGlobal: bad or repeated index/);
  assert.equal(head.numGlobalTokens, 32);
  assert.equal(head.dropGlobal(range(0, 32)).numCopies, 0);
  assert.deepEqual(head.globalPageIds, []);
  assert.deepEqual(pool.freeQueue().slice(0, 4), [2, 3, 4, 5]);
  head.checkInvariants();
  pool.checkInvariants();
});

test("release returns every page (global then ring pages at the head of the free list); the peak stays", () => {
  const pool = new BlockPool(16);
  const head = headWithFortyGlobal(pool, new SimulatedKvStore(16));
  assert.equal(head.numPeakPages, 4);
  head.release();
  assert.deepEqual(pool.freeQueue(), [2, 3, 4, 1, ...range(5, 16)]);
  assert.deepEqual([head.numTokens, head.numGlobalTokens, head.numPagesHeld, head.numAdmittedTotal, head.numPeakPages], [0, 0, 0, 0, 4]);
  assert.ok(head.ringPositions.every((p) => p === -1));
  assert.ok(head.ringAdmitted.every((f) => f === 0));
  head.checkInvariants();
  // usable again from position 0, on the page freed last but first in the queue
  assert.deepEqual(head.append(3).tableUpdates, [{ index: 0, page: 2 }]);
  head.commitFlags([1, 1, 1]);
  assert.equal(head.numAdmittedTotal, 3);
  pool.checkInvariants();
});

test("numPagesNeeded is exactly what append takes, and table updates name every page at its entry (random flags and chunks)", () => {
  for (const seed of [11, 12, 13, 14]) {
    const random = createRandom(seed);
    const window = 16 * randomInt(random, 1, 4);
    const pool = new BlockPool(400);
    const head = new HeadCache(pool, window);
    const table = new Map<number, number>(); // entry -> page
    for (let step = 0; step < 60; step++) {
      const numNew = random() < 0.4 ? 1 : randomInt(random, 1, window);
      const needed = head.numPagesNeeded(numNew);
      const free = pool.numFreePages;
      const numGlobalBefore = head.numGlobalTokens;
      const plan = head.append(numNew);
      assert.equal(free - pool.numFreePages, needed, `seed ${seed} step ${step}`);
      assert.equal(plan.tableUpdates.length, needed);
      assert.equal(plan.promotions.numCopies, head.numGlobalTokens - numGlobalBefore);
      for (const { index, page } of plan.tableUpdates) {
        assert.ok(!table.has(index), "an entry is reported once");
        table.set(index, page);
      }
      assert.deepEqual(range(0, head.ringPageIds.length).map((i) => table.get(i)), head.ringPageIds);
      assert.deepEqual(range(0, head.globalPageIds.length).map((j) => table.get(window / 16 + j)), head.globalPageIds);
      head.commitFlags(randomFlags(random, numNew, seed % 2 === 0 ? 0.3 : 0.8));
      head.checkInvariants();
    }
    assert.ok(head.numGlobalTokens > 16, "the run should fill global pages");
    pool.checkInvariants();
  }
});

test("the decode view after each step is the rule's visible set (prefill then decode, exact)", () => {
  const pool = new BlockPool(16);
  const store = new SimulatedKvStore(16);
  const head = new HeadCache(pool, 16);
  const admitted = flagsAt(40, [0, 5, 17, 30, 31]);
  let start = 0;
  for (const numNew of [16, 1, 7, 16]) {
    const plan = head.append(numNew);
    store.copy(plan.promotions);
    store.write(plan.slotMapping, start);
    head.commitFlags(admitted.subarray(start, start + numNew));
    start += numNew;
    assert.deepEqual(store.readVisible(head), bruteForceVisible(start - 1, admitted, 16));
  }
  assert.deepEqual(store.readVisible(head), [0, 5, 17, ...range(24, 40)]);
});

test("long steps: leaving tokens take global slots at once; the rejected are dropped before the next step, leaving the rule's visible set", () => {
  for (const [rate, seed] of [[1, 1], [0.3, 2], [0, 3]] as const) {
    const pool = new BlockPool(40);
    const store = new SimulatedKvStore(40);
    const head = new HeadCache(pool, 16, true);
    const random = createRandom(seed);
    const admitted = randomFlags(random, 200, rate);
    let start = 0;
    for (const numNew of [40, 5, 37, 1, 16, 50]) {
      const needed = head.numPagesNeeded(numNew);
      // the next plan's first act: drop the last step's rejected tokens
      store.copy(head.dropGlobal(head.takeRejected()));
      const free = pool.numFreePages;
      const plan = head.append(numNew);
      assert.equal(free - pool.numFreePages, needed, `rate ${rate}, step of ${numNew}: pages`);
      store.copy(plan.promotions);
      store.write(plan.slotMapping, start);
      head.commitFlags(admitted.subarray(start, start + numNew));
      start += numNew;
      assert.equal(head.numRejected, admitted.subarray(start - numNew, Math.max(start - numNew, start - 16)).filter((f) => !f).length, "the step's own leaving tokens whose flag is 0");
      const settled = head.numPagesSettled;
      assert.ok(settled <= head.numPagesHeld && (head.numRejected >= 16 ? settled < head.numPagesHeld : true));
      store.copy(head.dropGlobal(head.takeRejected()));
      assert.equal(head.numPagesHeld, settled, "settled: the pages held once the rejected are dropped");
      head.checkInvariants();
      assert.deepEqual(store.readVisible(head), bruteForceVisible(start - 1, admitted, 16), `rate ${rate}, after ${start} tokens`);
    }
    assert.equal(head.numAdmittedTotal, admitted.subarray(0, start).filter((f) => f).length);
    assert.throws(() => new HeadCache(pool, 16).numPagesNeeded(17), /a step appends at most W = 16 tokens, got 17/);
    head.append(20);
    head.commitFlags(new Uint8Array(20));
    assert.throws(() => head.append(1), /rejected tokens were never taken/);
    head.release();
    pool.checkInvariants();
  }
});
