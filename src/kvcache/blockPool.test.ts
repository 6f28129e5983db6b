/**
 * @module kvcache/blockPool.test
 *
 * The page pool on its own: exact page ids and free-list order (LIFO reuse,
 * pages of one free call reused in the order given), the reserved null page,
 * errors that leave the pool untouched, and the invariants under a long
 * random run checked against a plain array model of the free list.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRandom } from "../util/random.js";
import { BlockPool, NULL_PAGE, PAGE_SIZE } from "./blockPool.js";
import { CacheInvariantError, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";

test("a fresh pool of 8 has 7 usable pages in id order, page 0 reserved", () => {
  const pool = new BlockPool(8);
  assert.equal(NULL_PAGE, 0);
  assert.equal(PAGE_SIZE, 16);
  assert.equal(pool.numPages, 8);
  assert.equal(pool.numUsablePages, 7);
  assert.equal(pool.numFreePages, 7);
  assert.equal(pool.numOwnedPages, 0);
  assert.deepEqual(pool.freeQueue(), [1, 2, 3, 4, 5, 6, 7]);
  pool.checkInvariants();
});

test("allocation takes from the head; freed pages go back to the head, reused first in the order given", () => {
  const pool = new BlockPool(8);
  assert.deepEqual(pool.allocate(3), [1, 2, 3]);
  assert.deepEqual(pool.freeQueue(), [4, 5, 6, 7]);
  pool.free([2]);
  assert.deepEqual(pool.freeQueue(), [2, 4, 5, 6, 7]);
  pool.free([3, 1]);
  assert.deepEqual(pool.freeQueue(), [3, 1, 2, 4, 5, 6, 7]);
  assert.deepEqual(pool.allocate(2), [3, 1]);
  assert.equal(pool.allocateOne(), 2);
  assert.deepEqual(pool.freeQueue(), [4, 5, 6, 7]);
  assert.equal(pool.numFreePages, 4);
  assert.equal(pool.numOwnedPages, 3);
  assert.deepEqual(pool.allocate(4), [4, 5, 6, 7]);
  assert.deepEqual(pool.freeQueue(), []);
  pool.free([7, 1]);
  pool.free([5]);
  // the last free call's pages come first, then the earlier call's, each in its own order
  assert.deepEqual(pool.freeQueue(), [5, 7, 1]);
  assert.deepEqual(pool.allocate(0), []);
  assert.deepEqual(pool.allocate(3), [5, 7, 1]);
  pool.free(new Set([6, 4])); // any iterable
  assert.deepEqual(pool.freeQueue(), [6, 4]);
  pool.checkInvariants();
});

test("allocating more than is free throws OutOfPagesError and allocates nothing", () => {
  const pool = new BlockPool(8);
  pool.allocate(5);
  assert.equal(pool.canAllocate(2), true);
  assert.equal(pool.canAllocate(3), false);
  assert.throws(() => pool.allocate(3), (err: unknown) => {
    assert.ok(err instanceof OutOfPagesError);
    assert.equal(err.numRequested, 3);
    assert.equal(err.numFree, 2);
    assert.match(err.message, /^KV cache out of pages: needed 3, only 2 of 7 free .*Enlarge the KV page pool/);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
  assert.deepEqual(pool.freeQueue(), [6, 7]);
  pool.allocate(2);
  assert.equal(pool.canAllocate(1), false);
  assert.equal(pool.canAllocate(0), true);
  assert.throws(() => pool.allocateOne(), (err: unknown) => err instanceof OutOfPagesError && err.numRequested === 1 && err.numFree === 0);
  pool.checkInvariants();
});

test("bad page counts are assertion failures", () => {
  const pool = new BlockPool(8);
  assert.throws(() => pool.allocate(-1), CacheInvariantError);
  assert.throws(() => pool.allocate(1.5), CacheInvariantError);
  assert.equal(pool.numFreePages, 7);
});

test("freeing what is not owned is an assertion failure, and a failed free frees nothing", () => {
  const pool = new BlockPool(8);
  pool.allocate(3); // 1, 2, 3
  assert.throws(() => pool.free([2, 2]), /free: page 2 is not owned \(double free or bad id\)/);
  assert.throws(() => pool.free([1, 5]), CacheInvariantError, "5 is free");
  assert.throws(() => pool.free([NULL_PAGE]), /page 0 is not owned \(null page\)/);
  assert.throws(() => pool.free([8]), CacheInvariantError, "out of range");
  assert.throws(() => pool.free([-1]), CacheInvariantError, "negative");
  assert.throws(() => pool.free([1.5]), CacheInvariantError, "not an integer");
  assert.equal(pool.numOwnedPages, 3);
  assert.deepEqual(pool.freeQueue(), [4, 5, 6, 7]);
  pool.free([2]);
  assert.throws(() => pool.free([2]), CacheInvariantError, "double free across calls");
  pool.checkInvariants();
  // a failed free late in a long list leaves the pages it checked owned
  assert.throws(() => pool.free([1, 3, 2]), /free: page 2 is not owned/);
  pool.checkInvariants();
  pool.free([3, 1]);
  assert.deepEqual(pool.freeQueue(), [3, 1, 2, 4, 5, 6, 7]);
  pool.checkInvariants();
});

test("a group frees only its own pages, all or nothing", () => {
  const pool = new BlockPool(9, 2); // group 0: pages 1-4, group 1: pages 5-8 (pagesPerGroup 5)
  const [g0, g1] = [pool.group(0), pool.group(1)];
  const a = [g0.allocateOne(), g0.allocateOne()];
  const b = [g1.allocateOne(), g1.allocateOne()];
  assert.ok(a.every((p) => p < 5) && b.every((p) => p >= 5), `${a} ${b}`);
  assert.throws(() => g0.free([a[0], b[0]]), new RegExp(`free: page ${b[0]} is not in pages \\[0, 5\\) of its group`));
  assert.equal(g0.numFreePages, 2);
  pool.checkInvariants();
  g0.free(a);
  g1.free(new Set(b)); // any iterable
  assert.equal(pool.numOwnedPages, 0);
  pool.checkInvariants();
});

test("pool size is validated", () => {
  for (const bad of [1, 0, -3, 2.5, NaN, 0x7fffffff]) {
    assert.throws(() => new BlockPool(bad), (err: unknown) => {
      assert.ok(err instanceof InvalidCacheConfigError);
      assert.equal(err.field, "numPages");
      assert.match(err.message, new RegExp(`^KV page pool size must be an integer from 2 to ${Math.floor(0x7fffffff / 16)} \\(page 0 is reserved\\), got ${bad}$`));
      return true;
    });
  }
  const tiny = new BlockPool(2);
  assert.deepEqual(tiny.freeQueue(), [1]);
});

test("randomized allocate/free keeps the invariants and LIFO order against an array model (seeded)", () => {
  for (const seed of [1, 2, 3]) {
    const random = createRandom(seed);
    const pool = new BlockPool(33);
    const queue = pool.freeQueue(); // the model of the free list, head first
    const owned: number[] = [];
    let numFailed = 0;
    for (let step = 0; step < 500; step++) {
      if (random() < 0.5) {
        const n = Math.floor(random() * 7);
        if (n > queue.length) {
          assert.throws(() => pool.allocate(n), OutOfPagesError);
          numFailed++;
        } else {
          const pages = random() < 0.3 && n === 1 ? [pool.allocateOne()] : pool.allocate(n);
          assert.deepEqual(pages, queue.splice(0, n));
          owned.push(...pages);
        }
      } else {
        const pages: number[] = [];
        for (let k = Math.floor(random() * 5); k > 0 && owned.length > 0; k--) pages.push(...owned.splice(Math.floor(random() * owned.length), 1));
        pool.free(pages);
        queue.unshift(...pages);
      }
      pool.checkInvariants();
      assert.deepEqual(pool.freeQueue(), queue);
      assert.equal(pool.numOwnedPages, owned.length);
      assert.equal(pool.numFreePages + pool.numOwnedPages, 32);
    }
    assert.ok(numFailed > 0, "the run should hit an empty pool");
    pool.free(owned.splice(0));
    assert.equal(pool.numFreePages, 32);
    pool.checkInvariants();
  }
});
