/**
 * @module kvcache/testing
 *
 * Test support for the cache, the planner and the scheduler; no production
 * module imports it. Holds the brute-force visibility rule of docs/design.md §3,
 * a simulated K/V store whose "key" of a token is its position (so a test can
 * read back what a kernel would see through the block tables), a simulated
 * device block table fed only by the planner's table updates, and a fake
 * backend with just what KvManager calls. Random data comes from the one
 * seeded generator, util/random.ts.
 */

import type { AttentionDims, Backend, DType, KvDType, KvPool, Tensor } from "../backends/backend.js";
import { PAGE_SIZE } from "./blockPool.js";
import type { BlockTableView, SlotCopies } from "./blockTable.js";
import type { TableUpdate } from "./headCache.js";

/** Positions query `i` sees by the rule: j <= i and (i - j < W or admitted[j]). Sorted. */
export function bruteForceVisible(i: number, admitted: ArrayLike<number>, window: number): number[] {
  const visible: number[] = [];
  for (let j = 0; j <= i; j++) if (i - j < window || admitted[j]) visible.push(j);
  return visible;
}

/** `n` flags, each 1 with probability `rate`. */
export function randomFlags(random: () => number, n: number, rate: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => (random() < rate ? 1 : 0));
}

/** A random integer in [lo, hi]. */
export function randomInt(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Marks a slot never written (or written over by garbage). */
export const UNWRITTEN = -1;

/** A K/V buffer of numPages * 16 slots whose "key" is the token's position. */
export class SimulatedKvStore {
  readonly keys: Int32Array;

  constructor(numPages: number) {
    this.keys = new Int32Array(numPages * PAGE_SIZE).fill(UNWRITTEN);
  }

  /** Writes position firstPosition + t to slot slotMapping[t] (skipping -1). */
  write(slotMapping: ArrayLike<number>, firstPosition: number): void {
    for (let t = 0; t < slotMapping.length; t++) if (slotMapping[t]! >= 0) this.keys[slotMapping[t]!] = firstPosition + t;
  }

  /** Applies copies with parallel semantics: every read happens before any write. */
  copy(copies: SlotCopies): void {
    const values = Array.from(copies.fromSlots.subarray(0, copies.numCopies), (slot) => this.keys[slot]!);
    values.forEach((value, i) => (this.keys[copies.toSlots[i]!] = value));
  }

  /**
   * Fills pages with garbage. Tests poison every freshly allocated page, so
   * a cache that reads a recycled page before writing it cannot pass by luck.
   */
  poison(pages: readonly number[]): void {
    for (const page of pages) this.keys.fill(-1000 - page, page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  }

  /** What a decode query reads through the view: every ring offset in use and every global token. Sorted. */
  readVisible(view: BlockTableView): number[] {
    const seen: number[] = [];
    for (let r = 0; r < view.numRingTokens; r++) seen.push(this.keys[view.ringPageIds[r >> 4]! * PAGE_SIZE + (r % PAGE_SIZE)]!);
    for (let g = 0; g < view.numGlobalTokens; g++) seen.push(this.keys[view.globalPageIds[g >> 4]! * PAGE_SIZE + (g % PAGE_SIZE)]!);
    return seen.sort((a, b) => a - b);
  }

  /**
   * What query `i` of a chunk starting at `chunkStart` sees, read the way a
   * prefill kernel does: the view as it was before the chunk (old ring tokens
   * filtered by the rule with the ring's positions and flags, every global
   * token), plus the chunk's own fresh tokens by the rule.
   */
  readVisibleInChunk(view: BlockTableView, i: number, chunkStart: number, chunkAdmitted: ArrayLike<number>): number[] {
    const W = view.window;
    const seen: number[] = [];
    for (let r = 0; r < view.numRingTokens; r++) {
      const position = this.keys[view.ringPageIds[r >> 4]! * PAGE_SIZE + (r % PAGE_SIZE)]!;
      if (position !== view.ringPositions[r]) throw new Error(`ring offset ${r} stores ${position}, metadata says ${view.ringPositions[r]}`);
      if (i - position < W || view.ringAdmitted[r]) seen.push(position);
    }
    for (let g = 0; g < view.numGlobalTokens; g++) seen.push(this.keys[view.globalPageIds[g >> 4]! * PAGE_SIZE + (g % PAGE_SIZE)]!);
    for (let p = chunkStart; p <= i; p++) if (i - p < W || chunkAdmitted[p - chunkStart]) seen.push(p);
    return seen.sort((a, b) => a - b);
  }
}

/**
 * One head's row of the device block table, written only through table
 * updates (as the device's scatter does). Starts full of garbage, so an entry
 * the cache forgot to report is caught when a read goes through it.
 */
export class SimulatedTableRow {
  readonly entries: Int32Array;

  constructor(readonly window: number, numEntries: number) {
    this.entries = new Int32Array(numEntries).fill(-7);
  }

  apply(updates: readonly TableUpdate[]): void {
    for (const { index, page } of updates) {
      if (index < 0 || index >= this.entries.length) throw new Error(`table update index ${index} outside the row`);
      this.entries[index] = page;
    }
  }

  /** The view a kernel would derive from the row and the counts the step fields carry; positions and flags from `meta`. */
  view(meta: BlockTableView): BlockTableView {
    const numRingPages = Math.ceil(meta.numRingTokens / PAGE_SIZE);
    const firstGlobal = this.window / PAGE_SIZE;
    return {
      window: this.window,
      ringPageIds: Array.from(this.entries.subarray(0, numRingPages)),
      globalPageIds: Array.from(this.entries.subarray(firstGlobal, firstGlobal + Math.ceil(meta.numGlobalTokens / PAGE_SIZE))),
      numRingTokens: meta.numRingTokens,
      numGlobalTokens: meta.numGlobalTokens,
      numTokens: meta.numTokens,
      ringPositions: meta.ringPositions,
      ringAdmitted: meta.ringAdmitted,
      globalPositions: meta.globalPositions,
    };
  }
}

/** What the fake backend was asked to create. */
export interface FakeBackendLog {
  readonly kvPools: { numPages: number; headDim: number; kvDType: KvDType }[];
  readonly tensors: Tensor[];
}

/** A backend with only createKvPool and createTensor (plain objects), enough for KvManager; any other call throws. */
export function createFakeBackend(): { backend: Backend; log: FakeBackendLog } {
  const log: FakeBackendLog = { kvPools: [], tensors: [] };
  const impl = {
    createKvPool(numPages: number, headDim: number, kvDType: KvDType): KvPool {
      log.kvPools.push({ numPages, headDim, kvDType });
      return { numPages, headDim, kvDType, numBytes: 2 * numPages * PAGE_SIZE * headDim * (kvDType === "f32" ? 4 : 2) };
    },
    createTensor(shape: readonly number[], dtype: DType, label: string): Tensor {
      const tensor = { shape: [...shape], dtype, numel: shape.reduce((a, b) => a * b, 1), label };
      log.tensors.push(tensor);
      return tensor;
    },
  };
  const backend = new Proxy(impl, {
    get(target, name) {
      if (name in target) return target[name as keyof typeof target];
      if (name === "then") return undefined; // not a thenable
      throw new Error(`fake backend: ${String(name)} is not implemented`);
    },
  }) as unknown as Backend;
  return { backend, log };
}

/** Attention dims of a tiny model. */
export function tinyDims(numLayers: number, numKvHeads: number, headDim = 8): AttentionDims {
  return { numLayers, numHeads: 2 * numKvHeads, numKvHeads, headDim };
}
