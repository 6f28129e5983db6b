import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockPool, NULL_PAGE } from "./blockPool.js";
import { CacheInvariantError, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { createRng } from "./testing.js";

test("a fresh pool of 8 has 7 usable pages, page 0 reserved", () => {
  const pool = new BlockPool(8);
  assert.equal(pool.numUsablePages, 7);
  assert.equal(pool.numFreePages, 7);
  assert.equal(pool.numOwnedPages, 0);
  assert.deepEqual(pool.freeQueue(), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(NULL_PAGE, 0);
  pool.checkInvariants();
});

test("allocation takes from the head; freed pages go back to the head and are reused first, in the order given", () => {
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
  pool.free([1]);
  assert.deepEqual(pool.freeQueue(), [1]);
  pool.checkInvariants();
});

test("a page listed twice in one free call is a double free, and nothing is freed", () => {
  const pool = new BlockPool(8);
  pool.allocate(3);
  assert.throws(() => pool.free([2, 2]), CacheInvariantError);
  assert.equal(pool.numOwnedPages, 3);
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
    assert.match(err.message, /out of pages: needed 3, only 2 of 7 free.*Enlarge the KV page pool/);
    return true;
  });
  assert.equal(pool.numFreePages, 2);
  assert.deepEqual(pool.freeQueue(), [6, 7]);
  pool.allocate(2);
  assert.throws(() => pool.allocateOne(), OutOfPagesError);
  pool.checkInvariants();
});

test("freeing a page that is not owned is an assertion failure", () => {
  const pool = new BlockPool(8);
  const [a] = pool.allocate(1);
  pool.free([a!]);
  assert.throws(() => pool.free([a!]), CacheInvariantError, "double free");
  assert.throws(() => pool.free([NULL_PAGE]), /null page/);
  assert.throws(() => pool.free([5]), CacheInvariantError, "never allocated");
  assert.throws(() => pool.free([8]), CacheInvariantError, "out of range");
  pool.checkInvariants();
});

test("pool size is validated", () => {
  assert.throws(() => new BlockPool(1), InvalidCacheConfigError);
  assert.throws(() => new BlockPool(2.5), /integer from 2/);
  assert.equal(new BlockPool(2).numFreePages, 1);
});

test("randomized allocate/free keeps the invariants and LIFO order (seeded)", () => {
  const rng = createRng(1234);
  const pool = new BlockPool(33);
  const queue = pool.freeQueue(); // model of the free list
  const owned: number[] = [];
  for (let step = 0; step < 400; step++) {
    if (rng() < 0.5) {
      const n = Math.floor(rng() * 6);
      if (n > queue.length) {
        assert.throws(() => pool.allocate(n), OutOfPagesError);
      } else {
        const pages = pool.allocate(n);
        assert.deepEqual(pages, queue.splice(0, n));
        owned.push(...pages);
      }
    } else {
      const pages: number[] = [];
      for (let k = Math.floor(rng() * 4); k > 0 && owned.length > 0; k--) {
        pages.push(...owned.splice(Math.floor(rng() * owned.length), 1));
      }
      pool.free(pages);
      queue.unshift(...pages);
    }
    pool.checkInvariants();
    assert.deepEqual(pool.freeQueue(), queue);
    assert.equal(pool.numOwnedPages, owned.length);
  }
});
