/**
 * KernelHeap, the allocator of the kernels' memory: exact pointers for
 * first fit, coalescing with both neighbours, giving the top back, fresh
 * versus reused blocks (memory above the high-water mark is still zero),
 * the growth callback, refused frees and sizes, and the invariants after
 * long random sequences of allocations and frees, checked against a model.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TestRandom } from "../conformance/testData.js";
import { HEAP_ALIGN, KernelHeap } from "./kernelHeap.js";

function heap(base = 64) {
  const grown: number[] = [];
  return { h: new KernelHeap(base, (end) => grown.push(end)), grown };
}

test("the first block starts at base rounded up to 64 (pointer 0 stays reserved); sizes round up to 64", () => {
  assert.equal(new KernelHeap(0, () => {}).top, 64);
  assert.equal(new KernelHeap(100, () => {}).top, 128);
  const { h, grown } = heap(64);
  assert.deepEqual(h.alloc(1), { ptr: 64, fresh: true });
  assert.deepEqual(h.alloc(100), { ptr: 128, fresh: true });
  assert.deepEqual(h.alloc(0), { ptr: 256, fresh: true });
  assert.deepEqual(h.alloc(64), { ptr: 320, fresh: true });
  assert.equal(h.top, 384);
  assert.equal(h.numLiveBytes, 64 + 128 + 64 + 64);
  assert.deepEqual(grown, [128, 256, 320, 384], "grow is asked for [0, end) before each block from the top");
  assert.equal(HEAP_ALIGN, 64);
});

test("first fit: the lowest free block that fits, split from its start; reused blocks are not fresh", () => {
  const { h } = heap();
  const [a, b, c, d, e] = [64, 128, 64, 192, 64].map((n) => h.alloc(n).ptr); // 64, 128, 256, 320, 512
  assert.deepEqual([a, b, c, d, e], [64, 128, 256, 320, 512]);
  h.free(b); // free: [128, 256)
  h.free(d); // free: [128, 256), [320, 512)
  assert.deepEqual(h.alloc(150), { ptr: 320, fresh: false }, "192 bytes: only the second hole fits");
  assert.deepEqual(h.alloc(64), { ptr: 128, fresh: false }, "64 bytes: the first hole, from its start");
  assert.deepEqual(h.alloc(64), { ptr: 192, fresh: false }, "the rest of the first hole");
  assert.deepEqual(h.alloc(64), { ptr: 576, fresh: true }, "no hole left: from the top");
  void [a, c, e];
  h.checkInvariants();
});

test("free merges with the free neighbours on both sides", () => {
  const { h } = heap();
  const ptrs = [64, 64, 64, 64, 64].map((n) => h.alloc(n).ptr); // 64 128 192 256 320, top 384
  h.free(ptrs[1]);
  h.free(ptrs[3]);
  h.free(ptrs[2]); // joins [128, 192) + [192, 256) + [256, 320)
  h.checkInvariants();
  assert.deepEqual(h.alloc(192), { ptr: 128, fresh: false }, "one block of 192 where three were");
  h.free(128);
  h.free(ptrs[0]); // [64, 320) now
  assert.deepEqual(h.alloc(256), { ptr: 64, fresh: false });
  assert.equal(h.top, 384);
});

test("a block freed at the top gives the memory back to the top, merged with the free blocks below it", () => {
  const { h } = heap();
  const [a, b, c] = [64, 64, 64].map((n) => h.alloc(n).ptr); // 64 128 192, top 256
  h.free(b);
  h.free(c); // [128, 256) reaches the top
  assert.equal(h.top, 128);
  h.checkInvariants();
  // below the high-water mark (256) memory was handed out before: not fresh; above it: fresh
  assert.deepEqual(h.alloc(128), { ptr: 128, fresh: false });
  assert.deepEqual(h.alloc(64), { ptr: 256, fresh: true });
  h.free(256);
  assert.equal(h.top, 256);
  assert.deepEqual(h.alloc(192), { ptr: 256, fresh: false }, "a block that starts below the high-water mark is not fresh, even if it ends above");
  assert.deepEqual(h.alloc(64), { ptr: 448, fresh: true });
  h.free(a);
  assert.equal(h.top, 512, "a free block below live ones stays free");
  h.checkInvariants();
});

test("double frees, unknown pointers and bad sizes are refused; a failing grow changes nothing", () => {
  let limit = 1024;
  const h = new KernelHeap(64, (end) => {
    if (end > limit) throw new RangeError(`cannot grow to ${end}`);
  });
  const p = h.alloc(64).ptr;
  h.free(p);
  assert.throws(() => h.free(p), /not a live block/);
  assert.throws(() => h.free(12345), /not a live block/);
  for (const bad of [-1, 1.5, NaN, Infinity]) assert.throws(() => h.alloc(bad), RangeError, `size ${bad}`);
  assert.throws(() => h.alloc(2000), /cannot grow/);
  assert.equal(h.top, 64);
  assert.equal(h.numLiveBytes, 0);
  limit = 4096;
  assert.deepEqual(h.alloc(2000), { ptr: 64, fresh: false }, "the failed block never counted (and [64, 128) was handed out before)");
});

test("random sequences of allocations and frees keep the invariants and match a model of the blocks", () => {
  const random = new TestRandom(1300);
  for (let run = 0; run < 20; run++) {
    const { h } = heap(64 * (1 + random.int(4)));
    const live = new Map<number, number>(); // ptr -> rounded size
    let highWater = h.top;
    for (let step = 0; step < 400; step++) {
      if (live.size > 0 && random.next() < 0.45) {
        const ptrs = [...live.keys()];
        const ptr = ptrs[random.int(ptrs.length)];
        h.free(ptr);
        live.delete(ptr);
      } else {
        const n = random.next() < 0.2 ? random.int(8) : random.int(random.next() < 0.1 ? 20000 : 700);
        const { ptr, fresh } = h.alloc(n);
        const size = Math.max(64, Math.ceil(n / 64) * 64);
        assert.equal(ptr % 64, 0);
        for (const [q, s] of live) assert.ok(ptr + size <= q || q + s <= ptr, `block ${ptr}+${size} overlaps ${q}+${s}`);
        assert.equal(fresh, ptr >= highWater, `fresh: ${ptr} against the high-water mark ${highWater}`);
        live.set(ptr, size);
        highWater = Math.max(highWater, ptr + size);
      }
      h.checkInvariants();
      assert.equal(h.numLiveBytes, [...live.values()].reduce((a, b) => a + b, 0));
      const end = Math.max(0, ...[...live].map(([p, s]) => p + s));
      if (live.size > 0) assert.equal(h.top, end, "the top ends at the last live block");
    }
    for (const ptr of live.keys()) h.free(ptr);
    h.checkInvariants();
    assert.equal(h.numLiveBytes, 0);
  }
});
