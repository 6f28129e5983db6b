/**
 * @module kvcache/kvManager.test
 *
 * The engine's KV memory on a fake backend: what it asks the backend for
 * (one page pool, block tables [slots, L, H, W_max/16 + ceil(ctx/16)], ring
 * flags [slots, L, H, W_max]), device table slots handed out LIFO from 0,
 * caches that share the one pool and refuse windows above the largest, and
 * the invariants.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { CacheInvariantError, InvalidCacheConfigError } from "./errors.js";
import { KvManager, type KvManagerOptions, pageBytes } from "./kvManager.js";
import { createFakeBackend, tinyDims } from "./testing.js";

const options = (over: Partial<KvManagerOptions> = {}): KvManagerOptions => ({ numPages: 32, kvDType: "f32", numSlots: 3, maxWindow: 64, maxContext: 100, ...over });

test("page bytes: K and V of 16 tokens of one head", () => {
  assert.equal(pageBytes(64, "f32"), 2 * 16 * 64 * 4);
  assert.equal(pageBytes(64, "f16"), 2 * 16 * 64 * 2);
  assert.equal(pageBytes(128, "bf16"), 2 * 16 * 128 * 2);
});

test("creates one pool and the device tables with their shapes", () => {
  const { backend, log } = createFakeBackend();
  const kv = new KvManager(backend, tinyDims(2, 3, 8), options({ kvDType: "f16" }));
  assert.deepEqual(log.kvPools, [{ numPages: 32, headDim: 8, kvDType: "f16" }]);
  assert.equal(kv.kvDType, "f16");
  assert.equal(kv.blockPool.numPages, 32);
  assert.equal(kv.storage.numPages, 32);
  // 64 / 16 ring entries + ceil(100 / 16) global entries
  assert.equal(kv.tables.rowStride, 4 + 7);
  assert.deepEqual(log.tensors.map((t) => [t.shape, t.dtype, t.label]), [
    [[3, 2, 3, 11], "i32", "block tables"],
    [[3, 2, 3, 64], "u8", "ring admit flags"],
  ]);
  assert.equal(kv.tables.blockTables, log.tensors[0]);
  assert.equal(kv.tables.ringFlags, log.tensors[1]);
  assert.deepEqual([kv.tables.numSlots, kv.tables.maxWindow], [3, 64]);
});

test("slots are handed out from 0 up and reused last-released first", () => {
  const { backend } = createFakeBackend();
  const kv = new KvManager(backend, tinyDims(1, 1), options());
  assert.equal(kv.numFreeSlots, 3);
  assert.deepEqual([kv.acquireSlot(), kv.acquireSlot(), kv.acquireSlot(), kv.acquireSlot()], [0, 1, 2, null]);
  assert.equal(kv.numFreeSlots, 0);
  kv.releaseSlot(1);
  assert.equal(kv.acquireSlot(), 1);
  kv.releaseSlot(0);
  kv.releaseSlot(2);
  assert.deepEqual([kv.acquireSlot(), kv.acquireSlot()], [2, 0]);
  kv.releaseSlot(0);
  assert.throws(() => kv.releaseSlot(0), /releaseSlot: slot 0 is not taken/);
  for (const bad of [3, -1, 0.5]) assert.throws(() => kv.releaseSlot(bad), CacheInvariantError);
  kv.checkInvariants();
});

test("caches share the one pool, take the element size of the page dtype, and refuse windows above the largest", () => {
  const { backend } = createFakeBackend();
  const kv = new KvManager(backend, tinyDims(2, 2, 8), options({ kvDType: "bf16" }));
  const a = kv.createCache(64);
  const b = kv.createCache(16, true);
  assert.deepEqual(a.config, { numLayers: 2, numKvHeads: 2, headDim: 8, bytesPerElement: 2, window: 64, longSteps: false });
  assert.deepEqual([a.numPagesNeeded(64), b.numPagesNeeded(80)], [4 * 4, 4 * (1 + 4)], "b may take 80 tokens in one step: a ring page and 64 global tokens per head");
  assert.throws(() => a.numPagesNeeded(80), /a step appends at most W = 64 tokens, got 80/);
  assert.equal(a.bytesPerToken, 2 * 8 * 2);
  a.append(1);
  b.append(1);
  assert.deepEqual([a.head(0, 0).ringPageIds, b.head(0, 0).ringPageIds], [[1], [5]]);
  assert.equal(kv.blockPool.numOwnedPages, 8);
  assert.throws(() => kv.createCache(80), (err: unknown) => err instanceof InvalidInputError && err.message === "window 80 exceeds this engine's largest window 64 (set maxWindow when loading the model)");
  assert.throws(() => kv.createCache(24), InvalidCacheConfigError);
  kv.checkInvariants();
  a.release();
  b.release();
  assert.equal(kv.blockPool.numFreePages, 31);
  kv.checkInvariants();
});
