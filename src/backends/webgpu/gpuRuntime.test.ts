/**
 * The runtime's mid-step submits: every `submitEvery` commands a dispatch
 * submits what is recorded; 0 records until a read (it once submitted at
 * every dispatch). Results are the same either way. Paced reads idle before
 * mapping once a read of the same work has been timed, and see the same data.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createNodeWebGpuDevice } from "../../platform/node/webgpu.js";
import { GpuRuntime, type Kernel } from "./gpuRuntime.js";

const addOne: Kernel = {
  label: "add one",
  bindings: ["rw"],
  code: `@group(0) @binding(0) var<storage, read_write> x: array<u32>;
@compute @workgroup_size(1) fn main() { x[0] = x[0] + au(0u); }`,
};

test("gpuRuntime: submitEvery bounds the commands held back; 0 holds all until the read", async () => {
  const { device, release } = await createNodeWebGpuDevice();
  try {
    const rt = new GpuRuntime(device);
    const x = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    for (const every of [0, 1, 4]) {
      rt.submitEvery = every;
      rt.clear(x, 0, 16);
      rt.flush();
      const held: number[] = [];
      for (let i = 0; i < 10; i++) {
        rt.dispatch(addOne, [x], 1, [i + 1]);
        held.push(rt.numCommands);
      }
      assert.deepEqual(held, every === 0 ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : held.map((_, i) => (i % every) + 1), `submitEvery ${every}`);
      const { data } = await rt.readBack([{ buffer: x, bytes: 4 }]);
      assert.equal(new Uint32Array(data[0])[0], 55, `submitEvery ${every}: every dispatch ran, in order`);
    }
    x.destroy();
  } finally {
    device.destroy();
    release();
  }
});

test("gpuRuntime: reads reuse small staging buffers, in sequence and at once, and large reads get their own; every read sees its data", async () => {
  const { device, release } = await createNodeWebGpuDevice();
  try {
    const rt = new GpuRuntime(device);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const big = 80 << 10; // past the pooled size (64 KiB)
    const x = device.createBuffer({ size: big, usage });
    const words = (n: number, seed: number) => Uint32Array.from({ length: n }, (_, i) => (i * 2654435761 + seed) >>> 0);
    for (let round = 0; round < 6; round++) {
      const n = [1, 7, 1024, big / 4, 3, 16000][round];
      const want = words(n, round);
      device.queue.writeBuffer(x, 0, want);
      const [{ data }, second] = await Promise.all([rt.readBack([{ buffer: x, bytes: n * 4 }]), rt.readBack([{ buffer: x, bytes: 4, offset: 0 }, { buffer: x, bytes: 8, offset: 4 * (n > 2 ? n - 2 : 0) }])]);
      assert.deepEqual(new Uint32Array(data[0]), want, `round ${round}: ${n} words`);
      assert.deepEqual([...new Uint32Array(second.data[0]), ...new Uint32Array(second.data[1])], [want[0], ...(n > 2 ? [want[n - 2], want[n - 1]] : [want[0], n > 1 ? want[1] : 0])].slice(0, 3), `round ${round}: the read beside it`);
    }
    x.destroy();
  } finally {
    device.destroy();
    release();
  }
});

test("gpuRuntime: paced reads idle before mapping after a read of the same work, and see what unpaced reads see", async () => {
  const { device, release } = await createNodeWebGpuDevice();
  try {
    const rt = new GpuRuntime(device);
    // NOTE: the whole step waits at the read
    rt.submitEvery = 0;
    const idles: number[] = [];
    rt.idleFor = async (ms) => {
      idles.push(ms);
      await new Promise((resolve) => setTimeout(resolve, ms));
    };
    const x = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const step = async (dispatches: number) => {
      rt.clear(x, 0, 16);
      for (let i = 0; i < dispatches; i++) rt.dispatch(addOne, [x], 1, [i + 1]);
      const { data } = await rt.readBack([{ buffer: x, bytes: 4 }]);
      return new Uint32Array(data[0])[0];
    };
    const sums: number[] = [];
    const idledAt: boolean[] = [];
    // NOTE: 2000 dispatches wait long enough on any device (a software renderer runs them one by one)
    for (const n of [2000, 2000, 2000, 10, 2000, 2000]) {
      const before = idles.length;
      sums.push(await step(n));
      idledAt.push(idles.length > before);
    }
    assert.deepEqual(sums, [2000, 2000, 2000, 10, 2000, 2000].map((n) => (n * (n + 1)) / 2), "every read sees its step's sum");
    // the first read, the one after other work, and the one after that (its last read was other work) map at once
    assert.deepEqual(idledAt, [false, true, true, false, false, true]);
    assert.ok(idles.every((ms) => ms >= 0.5), `idles of half a millisecond or more: ${idles}`);
    x.destroy();
  } finally {
    device.destroy();
    release();
  }
});
