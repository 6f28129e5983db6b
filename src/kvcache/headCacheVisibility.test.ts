/**
 * @module kvcache/headCacheVisibility.test
 *
 * The cache against the semantic reference, docs/design.md §3: query i of a head
 * sees key j iff j <= i and (i - j < W or j was admitted, and not evicted).
 * Random chunks of at most W tokens with random flags are fed to heads that
 * share one pool; the test plays the device: it applies eviction moves, then
 * promotions, then the slot writes to a simulated K/V store whose keys are
 * positions, and keeps each head's block table row only from the table
 * updates. Every query of every chunk then reads through that row what a
 * prefill kernel would (old ring tokens by the rule, global pages, the fresh
 * chunk), and that must be exactly the rule's set.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRandom } from "../util/random.js";
import { BlockPool } from "./blockPool.js";
import { HeadCache } from "./headCache.js";
import { bruteForceVisible, randomFlags, randomInt, SimulatedKvStore, SimulatedTableRow } from "./testing.js";

interface SimulatedHead {
  readonly cache: HeadCache;
  readonly row: SimulatedTableRow;
  /** Rule flags by position: admitted and not evicted. */
  readonly visibleFlags: number[];
  readonly rate: number;
}

function runSeed(seed: number, window: number): { numQueries: number; numPromotions: number; numMoves: number } {
  const random = createRandom(seed);
  const pool = new BlockPool(200);
  const store = new SimulatedKvStore(pool.numPages);
  const heads: SimulatedHead[] = [0, 1].map(() => ({
    cache: new HeadCache(pool, window),
    row: new SimulatedTableRow(window, window / 16 + 32),
    visibleFlags: [],
    rate: random(),
  }));
  let numQueries = 0;
  let numPromotions = 0;
  let numMoves = 0;
  const numTokens = randomInt(random, 2 * window, 5 * window);
  while (heads[0]!.cache.numTokens < numTokens) {
    const start = heads[0]!.cache.numTokens;
    const numNew = Math.min(numTokens - start, random() < 0.3 ? 1 : randomInt(random, 1, window));
    for (const head of heads) {
      const { cache, row } = head;
      // eviction from earlier steps first, as the planner orders it
      if (cache.numGlobalTokens > 0 && random() < 0.2) {
        const indices = Array.from({ length: cache.numGlobalTokens }, (_, g) => g).filter(() => random() < 0.3);
        for (const g of indices) head.visibleFlags[cache.globalPositions[g]!] = 0;
        const moves = cache.dropGlobal(indices);
        store.copy(moves);
        numMoves += moves.numCopies;
      }
      const chunkFlags = randomFlags(random, numNew, head.rate);
      // what the step's queries read: the view before the step, through the device's table row
      const before = row.view(cache);
      const expectedFlags = [...head.visibleFlags, ...chunkFlags];
      for (let i = start; i < start + numNew; i++) {
        assert.deepEqual(
          store.readVisibleInChunk(before, i, start, chunkFlags),
          bruteForceVisible(i, expectedFlags, window),
          `seed ${seed} W ${window} query ${i}`,
        );
        numQueries++;
      }
      const plan = cache.append(numNew);
      row.apply(plan.tableUpdates);
      store.poison(plan.tableUpdates.map((u) => u.page));
      store.copy(plan.promotions);
      store.write(plan.slotMapping, start);
      numPromotions += plan.promotions.numCopies;
      cache.commitFlags(chunkFlags);
      head.visibleFlags.push(...chunkFlags);
      cache.checkInvariants();
      const after = row.view(cache);
      assert.deepEqual(after.ringPageIds, cache.ringPageIds);
      assert.deepEqual(after.globalPageIds, cache.globalPageIds);
      // the next decode query (position numTokens - 1) reads every ring and global slot
      assert.deepEqual(store.readVisible(after), bruteForceVisible(cache.numTokens - 1, head.visibleFlags, window));
    }
    pool.checkInvariants();
    assert.equal(heads[0]!.cache.numPagesHeld + heads[1]!.cache.numPagesHeld, pool.numOwnedPages);
  }
  for (const { cache } of heads) cache.release();
  assert.equal(pool.numFreePages, pool.numUsablePages);
  return { numQueries, numPromotions, numMoves };
}

test("what every query reads through the block table is exactly the visibility rule (windows 16..64, many seeds)", () => {
  let totals = { numQueries: 0, numPromotions: 0, numMoves: 0 };
  for (const window of [16, 32, 48, 64]) {
    for (let seed = 1; seed <= 12; seed++) {
      const r = runSeed(1000 * window + seed, window);
      totals = { numQueries: totals.numQueries + r.numQueries, numPromotions: totals.numPromotions + r.numPromotions, numMoves: totals.numMoves + r.numMoves };
    }
  }
  // the run must exercise what it claims to
  assert.ok(totals.numPromotions > 1000 && totals.numMoves > 100, JSON.stringify(totals));
});
