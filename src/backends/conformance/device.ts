/**
 * @module backends/conformance/device
 *
 * The device semantics of backend.ts: writes are queued in order with the
 * ops and copy their input when called; `read` waits for everything queued,
 * returns copies, and is one round trip however many tensors it reads;
 * tensors are zeroed at creation, also where a destroyed tensor's memory is
 * reused; a destroyed tensor or a disposed backend refuses every use with an
 * error naming it; destroying a tensor waits for the ops queued before; a
 * command that fails makes the next read reject and leaves the backend
 * usable; and a long run of queued commands lets the event loop run.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Backend, DType, HostArray } from "../backend.js";
import { f32Tensor, i32Tensor, tensorFrom, type ConformanceContext } from "./context.js";
import { TestRandom, weightData } from "./testData.js";

const HOST_ARRAY: Record<DType, new (n: number) => HostArray> = {
  f32: Float32Array, i32: Int32Array, u32: Uint32Array, u8: Uint8Array, f16: Uint16Array, bf16: Uint16Array,
};
const DTYPES = Object.keys(HOST_ARRAY) as DType[];

export function describeDeviceSemantics(ctx: ConformanceContext): void {
  describe("device semantics", () => {
    test("writes are queued in order with the ops and copy their input at call time", async () => {
      const b = ctx.backend;
      const x = b.createTensor([1, 4], "f32", "x"), acc = b.createTensor([1, 4], "f32", "acc");
      const data = Float32Array.of(1, 2, 3, 4);
      b.write(x, data);
      data.fill(100); // after the call: must not reach the device
      b.add(acc, x, 1);
      b.write(x, Float32Array.of(10, 20, 30, 40)); // after an op that reads x: the op still sees 1..4
      b.add(acc, x, 1);
      b.write(x, Float32Array.of(7), 2);
      const [gotAcc, gotX] = await b.read([{ tensor: acc }, { tensor: x }]);
      assert.deepEqual(Array.from(gotAcc), [11, 22, 33, 44]);
      assert.deepEqual(Array.from(gotX), [10, 20, 7, 40]);
    });

    test("read returns copies, as the dtype's host array; several tensors in one read are one round trip", async () => {
      const b = ctx.backend;
      const tensors = DTYPES.map((dtype) => {
        const data = new HOST_ARRAY[dtype](5);
        data.set([1, 2, 3, 4, 5]);
        return tensorFrom(b, [5], dtype, data, `a ${dtype} tensor`);
      });
      const { numReads, numWrites, bytesRead } = b.counters;
      const got = await b.read([...tensors.map((tensor) => ({ tensor })), { tensor: tensors[0] }, { tensor: tensors[1], numElements: 2 }]);
      assert.equal(b.counters.numReads, numReads + 1, "one read, one round trip");
      assert.equal(b.counters.numWrites, numWrites);
      assert.equal(b.counters.bytesRead, bytesRead + 5 * (4 + 4 + 4 + 1 + 2 + 2) + 5 * 4 + 2 * 4);
      DTYPES.forEach((dtype, i) => {
        assert.ok(got[i] instanceof HOST_ARRAY[dtype], `${dtype} reads back as ${HOST_ARRAY[dtype].name}`);
        assert.deepEqual(Array.from(got[i]), [1, 2, 3, 4, 5]);
      });
      assert.deepEqual(Array.from(got[DTYPES.length + 1]), [1, 2]);
      assert.notEqual(got[0], got[DTYPES.length], "two reads of one tensor are two arrays");
      got[0].fill(0);
      assert.deepEqual(Array.from((await b.read([{ tensor: tensors[0] }]))[0]), [1, 2, 3, 4, 5], "a returned array is a copy");
      const before = b.counters.numWrites;
      b.write(tensors[0], Float32Array.of(9));
      assert.equal(b.counters.numWrites, before + 1);
      await assert.rejects(b.read([{ tensor: tensors[0], numElements: 6 }]), RangeError);
      assert.throws(() => b.write(tensors[0], Int32Array.of(1)), TypeError, "an Int32Array does not fit an f32 tensor");
      assert.throws(() => b.write(tensors[0], new Float32Array(3), 3), RangeError, "a write past the end");
      for (const t of tensors) b.destroyTensor(t);
    });

    test("tensors are zeroed at creation, also in memory a destroyed tensor left", async () => {
      const b = ctx.backend;
      const random = new TestRandom(900);
      for (let round = 0; round < 3; round++) {
        const old = DTYPES.map((dtype) => {
          const data = new HOST_ARRAY[dtype](257 + round * 64);
          for (let i = 0; i < data.length; i++) data[i] = 1 + random.int(200);
          return tensorFrom(b, [data.length], dtype, data, `old ${dtype}`);
        });
        await b.read(old.map((tensor) => ({ tensor })));
        for (const t of old) b.destroyTensor(t);
        await b.read([]);
        // new tensors of every dtype and assorted sizes, where the old ones were
        const fresh = DTYPES.flatMap((dtype) => [b.createTensor([3, 50 + round], dtype, `new ${dtype}`), b.createTensor([257 + round * 64], dtype, `new ${dtype}`)]);
        const got = await b.read(fresh.map((tensor) => ({ tensor })));
        got.forEach((a, i) => assert.ok(a.every((v) => v === 0), `${fresh[i].label} [${fresh[i].shape}] is not zeroed`));
        for (const t of fresh) b.destroyTensor(t);
      }
    });

    test("destroyTensor waits for the ops queued before it; later uses throw an error naming the tensor", async () => {
      const b = ctx.backend;
      // large, so that the next tensor of its size lands in its memory (no smaller free block fits)
      const n = 1 << 18;
      const values = Float32Array.from({ length: n }, (_, i) => i % 1000);
      const doomed = f32Tensor(b, [1, n], values, "doomed tensor");
      const acc = b.createTensor([1, n], "f32", "acc");
      await b.read([{ tensor: doomed, numElements: 1 }]); // doomed holds its values before the add is queued
      b.add(acc, doomed, 1);
      b.destroyTensor(doomed);
      const next = f32Tensor(b, [1, n], new Float32Array(n).fill(99), "next tensor");
      const [sum, later] = await b.read([{ tensor: acc }, { tensor: next }]);
      assert.ok(sum.every((v, i) => v === values[i]), "an op queued before destroyTensor saw other data");
      assert.ok(later.every((v) => v === 99));
      assert.throws(() => b.add(acc, doomed, 1), /doomed tensor/);
      assert.throws(() => b.write(doomed, new Float32Array(8)), /doomed tensor/);
      assert.throws(() => b.destroyTensor(doomed), /doomed tensor/);
      await assert.rejects(b.read([{ tensor: doomed }]), /doomed tensor/);
      b.destroyTensor(next);
      b.destroyTensor(acc);
    });

    test("a command that fails makes the next read reject; the backend keeps working", async () => {
      const b = ctx.backend;
      const table = b.uploadWeight(weightData([4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), "matrix");
      const out = b.createTensor([2, 3], "f32", "embedded");
      b.embed(out, table, i32Tensor(b, [2], [1, 4], "ids with one outside the vocabulary"), 2);
      await assert.rejects(b.read([{ tensor: out }]));
      const dst = i32Tensor(b, [4], [0, 0, 0, 0], "dst");
      b.scatter(dst, i32Tensor(b, [1, 2], [4, 1], "an update outside dst"), 1);
      await assert.rejects(b.read([{ tensor: dst }]));
      // afterwards: writes, ops and reads as usual
      b.embed(out, table, i32Tensor(b, [2], [3, 0], "ids"), 2);
      b.write(dst, Int32Array.of(5, 6, 7, 8));
      const [embedded, values] = await b.read([{ tensor: out }, { tensor: dst }]);
      assert.deepEqual(Array.from(embedded), [10, 11, 12, 1, 2, 3]);
      assert.deepEqual(Array.from(values), [5, 6, 7, 8]);
    });

    test("availableBytes shrinks as memory is taken; submit counts; the backend names itself", async () => {
      const b = ctx.backend;
      assert.ok(b.name.length > 0 && b.description.length > 0);
      const before = b.availableBytes();
      assert.ok(before > 0, `${before} bytes available`);
      const big = b.createTensor([8 << 20], "u8", "big");
      if (Number.isFinite(before)) assert.ok(b.availableBytes() <= before - (8 << 20), `${before} -> ${b.availableBytes()} after taking 8 MiB`);
      const { numSubmits } = b.counters;
      b.write(big, Uint8Array.of(1));
      b.submit();
      assert.equal(b.counters.numSubmits, numSubmits + 1);
      const [head] = await b.read([{ tensor: big, numElements: 2 }]);
      assert.deepEqual(Array.from(head), [1, 0]);
      b.destroyTensor(big);
    });

    test("after dispose every call throws (dispose twice is harmless)", async () => {
      const b = await ctx.create();
      const t = b.createTensor([2], "f32", "t");
      b.dispose();
      b.dispose();
      assert.throws(() => b.createTensor([2], "f32", "late"), /dispose/);
      assert.throws(() => b.write(t, new Float32Array(2)), /dispose/);
      assert.throws(() => b.add(t, t, 1), /dispose/);
      assert.throws(() => b.createKvPool(1, 16, "f32"), /dispose/);
      await assert.rejects(b.read([{ tensor: t }]), /dispose/);
    });

    test("a long run of queued commands lets the event loop run (a timer fires while they execute)", async () => {
      const b = await ctx.create();
      try {
        await checkYields(b);
      } finally {
        b.dispose();
      }
    });
  });
}

/**
 * Queues about 300 ms of matmuls, reads, and counts the ticks of a 1 ms
 * timer meanwhile. A queue that runs its commands without yielding lets the
 * timer fire at most once; one that yields every slice, dozens of times.
 * NOTE: the bound is loose (a tick per 50 ms on average) because other
 * processes share the cores while the suite runs.
 */
async function checkYields(b: Backend): Promise<void> {
  const random = new TestRandom(901);
  const [M, N, K] = [32, 256, 256];
  const x = f32Tensor(b, [M, K], random.floats(M * K), "x");
  const w = b.uploadWeight(weightData([N, K], random.floats(N * K)), "matrix");
  const out = b.createTensor([M, N], "f32", "out");
  // calibrate after a warm-up (the first calls compile and grow memory)
  b.matmul(out, x, w, null, M);
  await b.read([{ tensor: out }]);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) b.matmul(out, x, w, null, M);
  await b.read([{ tensor: out }]);
  let count = Math.max(20, Math.min(20000, Math.ceil((300 * 10) / (performance.now() - t0))));
  for (let attempt = 0; ; attempt++) {
    for (let i = 0; i < count; i++) b.matmul(out, x, w, null, M);
    b.submit();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const start = performance.now();
    try {
      await b.read([{ tensor: out }]);
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - start;
    if (elapsed < 100 && attempt < 3) {
      count *= 4; // calibrated under load: too short to tell, run longer
      continue;
    }
    assert.ok(ticks >= Math.max(3, Math.floor(elapsed / 50)), `${count} matmuls ran ${elapsed.toFixed(0)} ms; the timer fired ${ticks} times`);
    return;
  }
}
