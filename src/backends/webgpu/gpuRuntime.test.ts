/**
 * The runtime's mid-step submits: every `submitEvery` commands a dispatch
 * submits what is recorded; 0 records until a read (it once submitted at
 * every dispatch). Results are the same either way.
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
