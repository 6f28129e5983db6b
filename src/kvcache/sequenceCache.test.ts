import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockPool } from "./blockPool.js";
import { InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { SequenceCache, type SequenceCacheConfig } from "./sequenceCache.js";
import { bruteForceVisible, createRng, SimulatedKvStore } from "./testing.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const config = (over: Partial<SequenceCacheConfig> = {}): SequenceCacheConfig => ({
  numLayers: 1, numKvHeads: 2, headDim: 8, bytesPerElement: 4, window: 16, ...over,
});

test("config is validated with typed errors", () => {
  const pool = new BlockPool(8);
  assert.throws(() => new SequenceCache(pool, config({ numLayers: 0 })), (err: unknown) =>
    err instanceof InvalidCacheConfigError && err.field === "numLayers");
  assert.throws(() => new SequenceCache(pool, config({ window: 24 })), (err: unknown) =>
    err instanceof InvalidCacheConfigError && err.field === "window" && /multiple of the page size 16, got 24/.test(err.message));
});

test("ragged heads: one admits everything, the other nothing", () => {
  const pool = new BlockPool(16);
  const seq = new SequenceCache(pool, config());
  const admitted = new Uint8Array(2 * 64);
  admitted.fill(1, 0, 64); // head 0 admits all, head 1 none
  assert.equal(seq.numPagesNeeded(64), 8); // worst case: both heads hold everything
  assert.equal(seq.numPagesNeeded(64, admitted), 5);
  assert.equal(seq.canAllocate(64, admitted), true);
  const { slotMapping, promotions } = seq.allocate(64, admitted);
  assert.equal(promotions.numCopies, 0);
  assert.deepEqual(seq.head(0, 0).ringPageIds, [1]);
  assert.deepEqual(seq.head(0, 0).globalPageIds, [2, 3, 4]);
  assert.deepEqual(seq.head(0, 1).ringPageIds, [5]);
  assert.deepEqual(seq.head(0, 1).globalPageIds, []);
  assert.deepEqual(Array.from(slotMapping), [
    ...range(32, 80), ...range(16, 32), // head 0: positions 0..47 to global pages 2..4, 48..63 to ring page 1
    ...Array<number>(48).fill(-1), ...range(80, 96), // head 1: only the window is written
  ]);
  assert.equal(seq.bytesPerToken, 64);
  assert.deepEqual(Array.from(seq.residentBytesByHead()), [4 * 16 * 64, 1 * 16 * 64]);
  assert.deepEqual(Array.from(seq.numAdmittedByHead()), [64, 0]);
  assert.deepEqual(seq.stats(), {
    numTokens: 64, numPagesHeld: 5, residentBytes: 5120, peakBytes: 5120,
    fullAttentionBytes: 64 * 1 * 2 * 2 * 8 * 4, numAdmitted: 64, numGlobalTokens: 48,
  });
  seq.checkInvariants();
  pool.checkInvariants();
});

test("decode step per layer: promotion, flat block tables, release", () => {
  const pool = new BlockPool(16);
  const seq = new SequenceCache(pool, config());
  const admitted = new Uint8Array(2 * 64).fill(1, 0, 64);
  seq.allocate(64, admitted);
  assert.equal(seq.numPagesNeeded(1), 1); // head 0 promotes token 48 into a new page; head 1 needs none
  const step = seq.allocateLayer(0, 1, Uint8Array.of(1, 1));
  assert.deepEqual(Array.from(step.slotMapping), [16, 80]);
  assert.deepEqual([Array.from(step.promotions.fromSlots), Array.from(step.promotions.toSlots)], [[16], [96]]);

  const tables = seq.blockTables(0);
  assert.equal(tables.numBlocksPerRow, 5);
  assert.deepEqual(Array.from(tables.blockTables), [1, 2, 3, 4, 6, 5, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(tables.numRingTokens), [16, 16]);
  assert.deepEqual(Array.from(tables.numGlobalTokens), [49, 0]);
  assert.deepEqual(Array.from(tables.globalPositions.subarray(0, 64)), [...range(0, 49), ...Array<number>(15).fill(-1)]);
  assert.ok(tables.globalPositions.subarray(64).every((p) => p === -1));
  assert.deepEqual(Array.from(tables.ringPositions.subarray(16, 32)), [64, ...range(49, 64)]);
  assert.deepEqual(Array.from(tables.ringAdmitted.subarray(16, 32)), [1, ...Array<number>(15).fill(0)]);

  assert.equal(seq.numPagesHeld, 6);
  seq.release();
  assert.equal(pool.numFreePages, pool.numUsablePages);
  assert.equal(seq.numPagesHeld, 0);
  assert.equal(seq.residentBytes, 0);
  assert.equal(seq.peakBytes, 6 * 16 * 64);
  assert.deepEqual(Array.from(seq.peakBytesByHead()), [5 * 16 * 64, 16 * 64]);
  assert.equal(seq.fullAttentionBytes, 0);
  pool.checkInvariants();
});

test("allocateLayer moves layers one at a time; numTokens counts complete steps", () => {
  const pool = new BlockPool(32);
  const seq = new SequenceCache(pool, config({ numLayers: 2 }));
  seq.allocate(3, new Uint8Array(2 * 2 * 3));
  seq.allocateLayer(0, 1, new Uint8Array(2));
  assert.equal(seq.numTokens, 3);
  seq.allocateLayer(1, 1, new Uint8Array(2));
  assert.equal(seq.numTokens, 4);
  assert.equal(seq.head(1, 1).numTokens, 4);
});

test("a step the pool cannot hold throws before any head changes", () => {
  const pool = new BlockPool(4); // 3 usable pages
  const seq = new SequenceCache(pool, config());
  const admitted = new Uint8Array(2 * 40).fill(1, 0, 40); // head 0 needs 3 pages, head 1 needs 1
  assert.equal(seq.canAllocate(40, admitted), false);
  assert.throws(() => seq.allocate(40, admitted), (err: unknown) => err instanceof OutOfPagesError && err.numRequested === 4);
  assert.throws(() => seq.allocateLayer(0, 40, admitted), OutOfPagesError);
  assert.equal(seq.head(0, 0).numTokens, 0);
  assert.equal(pool.numFreePages, 3);
  seq.allocate(40, new Uint8Array(2 * 40));
  assert.equal(seq.numPagesHeld, 2);
  pool.checkInvariants();
});

test("whole and split prefill agree with the rule on every head (2 layers x 2 heads, seeded)", () => {
  const rng = createRng(99);
  const numTokens = 90;
  const cfg = config({ numLayers: 2, window: 32 });
  const numHeads = cfg.numLayers * cfg.numKvHeads;
  const rates = [0, 1, 0.2, 0.6];
  const perHead = rates.map((rate) => Uint8Array.from({ length: numTokens }, () => (rng() < rate ? 1 : 0)));
  const stepFlags = (start: number, n: number) => {
    const out = new Uint8Array(numHeads * n);
    perHead.forEach((f, i) => out.set(f.subarray(start, start + n), i * n));
    return out;
  };
  const run = (chunks: number[]) => {
    const pool = new BlockPool(64);
    const store = new SimulatedKvStore(pool.numPages);
    const seq = new SequenceCache(pool, cfg);
    let start = 0;
    for (const n of chunks) {
      const { slotMapping, promotions } = seq.allocate(n, stepFlags(start, n));
      store.copy(promotions);
      for (let i = 0; i < numHeads; i++) store.write(slotMapping.subarray(i * n, (i + 1) * n), start);
      start += n;
      for (let i = 0; i < numHeads; i++) {
        const view = seq.head(Math.floor(i / cfg.numKvHeads), i % cfg.numKvHeads);
        assert.deepEqual(store.readVisible(view), bruteForceVisible(start - 1, perHead[i]!, cfg.window), `head ${i} query ${start - 1}`);
      }
      seq.checkInvariants();
      pool.checkInvariants();
    }
    return seq;
  };
  const whole = run([numTokens]);
  const split = run([50, ...Array<number>(numTokens - 50).fill(1)]);
  assert.deepEqual(split.stats(), whole.stats());
  assert.deepEqual(Array.from(whole.numAdmittedByHead()), perHead.map((f) => f.reduce((a, b) => a + b, 0)));
  assert.equal(whole.residentBytesByHead()[0], 2 * 16 * 64); // admits nothing: the ring only
});

test("successive sequences reuse the pages the earlier ones wrote (the resident set stays at one sequence's)", () => {
  const rng = createRng(77);
  const pool = new BlockPool(400);
  const everUsed = new Set<number>();
  let mostHeld = 0;
  for (let run = 0; run < 4; run++) {
    const seq = new SequenceCache(pool, config({ numLayers: 2 }));
    // a gated prefill then decode: about 30% admitted, in chunks of up to the window
    for (let pos = 0; pos < 300; ) {
      const n = Math.min(300 - pos, 1 + Math.floor(rng() * 16));
      for (let layer = 0; layer < 2; layer++) {
        seq.allocateLayer(layer, n, Uint8Array.from({ length: 2 * n }, () => (rng() < 0.3 ? 1 : 0)));
      }
      pos += n;
    }
    for (let layer = 0; layer < 2; layer++) for (let h = 0; h < 2; h++) {
      const head = seq.head(layer, h);
      for (const page of [...head.ringPageIds, ...head.globalPageIds]) everUsed.add(page);
    }
    mostHeld = Math.max(mostHeld, pool.numOwnedPages);
    seq.release();
    pool.checkInvariants();
  }
  // first-in-first-out reuse would have walked on to fresh pages in every run
  assert.ok(everUsed.size <= mostHeld + 8, `${everUsed.size} distinct pages for sequences holding at most ${mostHeld}`);
});
