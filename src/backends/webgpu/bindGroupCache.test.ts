/**
 * Bind groups are made once per layout and bindings (whole buffers and
 * ranges told apart), found again, and forgotten with a buffer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createNodeWebGpuDevice } from "../../platform/node/webgpu.js";
import { BindGroupCache } from "./bindGroupCache.js";

test("one bind group per layout and bindings; a destroyed buffer's groups are made again", async () => {
  const { device, release } = await createNodeWebGpuDevice();
  try {
    const layout = (n: number) => device.createBindGroupLayout({ entries: Array.from({ length: n }, (_, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: "read-only-storage" as const } })) });
    const [two, other] = [layout(2), layout(2)];
    const buffer = () => device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE });
    const [a, b, c] = [buffer(), buffer(), buffer()];
    const cache = new BindGroupCache(device);
    const ab = cache.get(two, [a, b]);
    assert.equal(cache.get(two, [a, b]), ab, "found again");
    assert.notEqual(cache.get(two, [b, a]), ab, "order matters");
    assert.notEqual(cache.get(other, [a, b]), ab, "per layout");
    const range = cache.get(two, [a, { buffer: b, offset: 256, size: 256 }]);
    assert.notEqual(range, ab, "a range is not the whole buffer");
    assert.equal(cache.get(two, [a, { buffer: b, offset: 256, size: 256 }]), range);
    assert.notEqual(cache.get(two, [a, { buffer: b, offset: 512, size: 256 }]), range, "another offset");
    assert.notEqual(cache.get(two, [a, { buffer: b, offset: 256, size: 512 }]), range, "another size");
    const ac = cache.get(two, [a, c]);
    cache.forget(b);
    assert.notEqual(cache.get(two, [a, b]), ab, "made again after its buffer was forgotten");
    assert.equal(cache.get(two, [a, c]), ac, "groups without the buffer stay");
  } finally {
    release();
  }
});
