import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockPool } from "./blockPool.js";
import { InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { HeadCache } from "./headCache.js";
import { bruteForceVisible, createRng, SimulatedKvStore } from "./testing.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const flags = (n: number, admittedPositions: number[]) => {
  const out = new Uint8Array(n);
  for (const p of admittedPositions) out[p] = 1;
  return out;
};

test("a window that is not a positive multiple of 16 is rejected", () => {
  const pool = new BlockPool(8);
  assert.throws(() => new HeadCache(pool, 100), (err: unknown) => {
    assert.ok(err instanceof InvalidCacheConfigError);
    assert.equal(err.field, "window");
    assert.equal(err.message, "local window W must be a positive multiple of the page size 16, got 100 (try 96 or 112)");
    return true;
  });
  for (const bad of [0, -16, 16.5, NaN]) assert.throws(() => new HeadCache(pool, bad), InvalidCacheConfigError);
  assert.equal(new HeadCache(pool, 16).window, 16);
});

test("prefill: last W tokens to the ring, earlier admitted ones packed into global pages", () => {
  const pool = new BlockPool(16);
  const head = new HeadCache(pool, 32);
  const { slotMapping, promotions } = head.planPrefill(40, flags(40, [0, 3, 20]));
  assert.deepEqual(head.ringPageIds, [1, 2]);
  assert.deepEqual(head.globalPageIds, [3]);
  assert.deepEqual(Array.from(slotMapping), [
    48, -1, -1, 49, -1, -1, -1, -1, // positions 0..7: left the window, 0 and 3 admitted
    ...range(24, 32), // 8..15 -> ring offsets 8..15 (page 1)
    ...range(32, 48), // 16..31 -> ring offsets 16..31 (page 2)
    ...range(16, 24), // 32..39 -> ring offsets 0..7 (page 1)
  ]);
  assert.equal(promotions.numCopies, 0);
  assert.deepEqual(Array.from(head.globalPositions), [0, 3]);
  assert.equal(head.ringPositions[0], 32);
  assert.equal(head.ringAdmitted[20], 1);
  assert.equal(head.numRingTokens, 32);
  assert.equal(head.numGlobalTokens, 2);
  assert.equal(head.numAdmittedTotal, 3);
  assert.equal(head.numPagesHeld, 3);
  assert.equal(head.residentBytes(64), 3 * 16 * 64);
  head.checkInvariants();
});

test("ring pages are allocated lazily as the ring fills", () => {
  const pool = new BlockPool(16);
  const head = new HeadCache(pool, 64);
  assert.deepEqual(Array.from(head.planPrefill(5, new Uint8Array(5)).slotMapping), [16, 17, 18, 19, 20]);
  assert.deepEqual(head.ringPageIds, [1]);
  assert.equal(head.numPagesNeeded(12, null), 1); // positions 5..16 reach ring page 2
  head.append(new Uint8Array(11));
  assert.deepEqual(head.ringPageIds, [1]);
  assert.equal(head.appendDecode(16, false).slot, 2 * 16);
  assert.deepEqual(head.ringPageIds, [1, 2]);
  head.checkInvariants();
});

test("decode with W=32: an admitted leaving token is promoted first, unadmitted ones are dropped", () => {
  const pool = new BlockPool(8);
  const head = new HeadCache(pool, 32);
  assert.deepEqual(Array.from(head.planPrefill(32, flags(32, [0, 5])).slotMapping), range(16, 48));
  assert.equal(head.numPagesNeeded(1, null), 1);
  // token 0 (admitted) leaves: copied from ring slot 16 to a fresh global page 3, offset 0
  assert.deepEqual(head.appendDecode(32, false), { slot: 16, promoteFrom: 16, promoteTo: 48 });
  assert.deepEqual(head.globalPageIds, [3]);
  // tokens 1..4 were not admitted: overwritten, no copy, no page
  assert.deepEqual(head.appendDecode(33, true), { slot: 17, promoteFrom: -1, promoteTo: -1 });
  for (const p of [34, 35, 36]) assert.equal(head.appendDecode(p, false).promoteFrom, -1);
  // token 5 leaves: same global page, next offset
  assert.deepEqual(head.appendDecode(37, false), { slot: 21, promoteFrom: 21, promoteTo: 49 });
  assert.equal(head.numPagesHeld, 3);
  assert.deepEqual(pool.freeQueue(), [4, 5, 6, 7]);
  for (let p = 38; p < 65; p++) head.appendDecode(p, false);
  // token 33 (admitted at decode time) leaves
  assert.deepEqual(head.appendDecode(65, false), { slot: 17, promoteFrom: 17, promoteTo: 50 });
  assert.deepEqual(Array.from(head.globalPositions), [0, 5, 33]);
  assert.equal(head.numAdmittedTotal, 3);
  head.checkInvariants();
});

/** Feeds `admitted` in chunks of the given sizes, checking every query against the rule. */
function runSchedule(admitted: Uint8Array, window: number, chunks: number[]) {
  const pool = new BlockPool(64);
  const store = new SimulatedKvStore(pool.numPages);
  const head = new HeadCache(pool, window);
  let start = 0;
  for (const size of chunks) {
    const chunk = admitted.subarray(start, start + size);
    for (let i = start; i < start + size; i++) {
      const seen = store.readVisibleInChunk(head, i, start, chunk);
      assert.deepEqual(seen, bruteForceVisible(i, admitted, window), `query ${i} inside chunk at ${start}`);
    }
    const { slotMapping, promotions } = head.append(chunk);
    store.copy(promotions);
    store.write(slotMapping, start);
    start += size;
    head.checkInvariants();
    pool.checkInvariants();
    assert.deepEqual(store.readVisible(head), bruteForceVisible(start - 1, admitted, window), `decode query ${start - 1}`);
  }
  return { ring: Array.from(head.ringPositions), global: Array.from(head.globalPositions).sort((a, b) => a - b) };
}

test("whole, split and chunked prefill give the rule's visible set for every query", () => {
  const rng = createRng(7);
  for (let trial = 0; trial < 24; trial++) {
    const window = 16 * (1 + Math.floor(rng() * 3));
    const numTokens = 40 + Math.floor(rng() * 120);
    const rate = rng();
    const admitted = Uint8Array.from({ length: numTokens }, () => (rng() < rate ? 1 : 0));
    const prefix = 1 + Math.floor(rng() * numTokens);
    const whole = runSchedule(admitted, window, [numTokens]);
    const split = runSchedule(admitted, window, [prefix, ...Array<number>(numTokens - prefix).fill(1)]);
    const chunks: number[] = [];
    for (let left = numTokens; left > 0; left -= chunks[chunks.length - 1]!) chunks.push(Math.min(left, 1 + Math.floor(rng() * 2 * window)));
    const chunked = runSchedule(admitted, window, chunks);
    assert.deepEqual(split, whole);
    assert.deepEqual(chunked, whole);
  }
});

test("dropGlobal fills holes from the tail and frees emptied pages", () => {
  const pool = new BlockPool(16);
  const store = new SimulatedKvStore(pool.numPages);
  const head = new HeadCache(pool, 16);
  store.write(head.planPrefill(56, flags(56, range(0, 40))).slotMapping, 0);
  assert.deepEqual(head.ringPageIds, [1]);
  assert.deepEqual(head.globalPageIds, [2, 3, 4]);
  const moves = head.dropGlobal([1, 2, 38]);
  // kept tokens 37 and 39 (page 4, offsets 5 and 7) fill holes 1 and 2 (page 2)
  assert.deepEqual(Array.from(moves.fromSlots), [69, 71]);
  assert.deepEqual(Array.from(moves.toSlots), [33, 34]);
  store.copy(moves);
  assert.deepEqual(Array.from(head.globalPositions), [0, 37, 39, ...range(3, 37)]);
  assert.deepEqual(store.readVisible(head), [0, ...range(3, 38), 39, ...range(40, 56)]);
  assert.equal(head.dropGlobal(range(16, 37)).numCopies, 0);
  assert.deepEqual(head.globalPageIds, [2]);
  assert.deepEqual(pool.freeQueue().slice(0, 2), [3, 4]); // freed pages are reused first
  assert.equal(head.numAdmittedTotal, 40);
  head.checkInvariants();
  pool.checkInvariants();
  assert.throws(() => head.dropGlobal([16]), /bad or repeated index 16/);
});

test("an append the pool cannot hold throws OutOfPagesError and changes nothing", () => {
  const pool = new BlockPool(3);
  const a = new HeadCache(pool, 16);
  const b = new HeadCache(pool, 16);
  a.planPrefill(20, flags(20, [0, 1, 2, 3]));
  assert.equal(a.numPagesHeld, 2);
  assert.equal(b.canAppend([1]), false);
  assert.throws(() => b.planPrefill(1, [1]), OutOfPagesError);
  assert.equal(b.numTokens, 0);
  assert.equal(b.numPagesHeld, 0);
  assert.equal(a.appendDecode(20, false).promoteFrom, -1); // leaving token 4 was not admitted: no page
  a.release();
  assert.equal(pool.numFreePages, 2);
  assert.equal(a.numPeakPages, 2);
  b.planPrefill(1, [1]);
  pool.checkInvariants();
});

test("randomized appends, evictions and releases keep every invariant (seeded)", () => {
  const rng = createRng(20251217);
  const pool = new BlockPool(24);
  const store = new SimulatedKvStore(pool.numPages);
  let numOutOfPages = 0;
  let numEvictionCopies = 0;
  const heads = [16, 16, 32, 48].map((w) => ({ cache: new HeadCache(pool, w), admitted: [] as number[], dropped: new Set<number>() }));
  for (let step = 0; step < 400; step++) {
    const h = heads[Math.floor(rng() * heads.length)]!;
    const op = rng();
    if (op < 0.8) {
      const rate = rng();
      const chunk = Uint8Array.from({ length: 1 + Math.floor(rng() * (rng() < 0.5 ? 4 : 60)) }, () => (rng() < rate ? 1 : 0));
      const before = { n: h.cache.numTokens, pages: h.cache.numPagesHeld, free: pool.numFreePages };
      try {
        const { slotMapping, promotions } = h.cache.append(chunk);
        store.copy(promotions);
        store.write(slotMapping, before.n);
        h.admitted.push(...chunk);
      } catch (err) {
        assert.ok(err instanceof OutOfPagesError);
        numOutOfPages++;
        assert.deepEqual({ n: h.cache.numTokens, pages: h.cache.numPagesHeld, free: pool.numFreePages }, before);
      }
    } else if (op < 0.95) {
      const drop = range(0, h.cache.numGlobalTokens).filter(() => rng() < 0.3);
      for (const g of drop) h.dropped.add(h.cache.globalPositions[g]!);
      const moves = h.cache.dropGlobal(drop);
      numEvictionCopies += moves.numCopies;
      store.copy(moves);
    } else {
      h.cache.release();
      h.admitted = [];
      h.dropped.clear();
    }
    pool.checkInvariants();
    assert.equal(heads.reduce((sum, x) => sum + x.cache.numPagesHeld, 0), pool.numOwnedPages);
    for (const x of heads) {
      x.cache.checkInvariants();
      const expected = x.admitted.length === 0 ? []
        : bruteForceVisible(x.admitted.length - 1, x.admitted, x.cache.window).filter((p) => !x.dropped.has(p));
      assert.deepEqual(store.readVisible(x.cache), expected, `step ${step}`);
    }
  }
  assert.ok(numOutOfPages > 0 && numEvictionCopies > 0, "the run should hit a full pool and move evicted tokens");
});
