/**
 * @module cache/testing
 *
 * Test helpers for the cache (not used by the engine): a seeded PRNG, the
 * brute-force visibility rule of DESIGN.md §3, and a simulated K/V store that
 * holds each token's position as its "key" so tests can read back what a
 * kernel would see through the block tables.
 */

import { PAGE_SIZE } from "./blockPool.js";
import type { BlockTableView, SlotCopies } from "./blockTable.js";

/** Deterministic PRNG (mulberry32): returns floats in [0, 1). */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Positions query `i` sees by the rule: j <= i and (i - j < W or admitted[j]). Sorted. */
export function bruteForceVisible(i: number, admitted: ArrayLike<number>, window: number): number[] {
  const visible: number[] = [];
  for (let j = 0; j <= i; j++) if (i - j < window || admitted[j]) visible.push(j);
  return visible;
}

/** A K/V buffer of numPages * 16 slots whose "key" is the token's position (-1 = never written). */
export class SimulatedKvStore {
  readonly keys: Int32Array;

  constructor(numPages: number) {
    this.keys = new Int32Array(numPages * PAGE_SIZE).fill(-1);
  }

  /** Writes position firstPosition + t to slotMapping[t] (skipping -1). */
  write(slotMapping: ArrayLike<number>, firstPosition: number): void {
    for (let t = 0; t < slotMapping.length; t++) if (slotMapping[t]! >= 0) this.keys[slotMapping[t]!] = firstPosition + t;
  }

  /** Applies copies in parallel semantics: every read happens before any write. */
  copy(copies: SlotCopies): void {
    const values = Array.from(copies.fromSlots.subarray(0, copies.numCopies), (slot) => this.keys[slot]!);
    values.forEach((value, i) => (this.keys[copies.toSlots[i]!] = value));
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
   * prefill kernel would: the view before the chunk's commit, filtered by the
   * rule with the ring's positions and flags, plus the chunk's own tokens.
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
