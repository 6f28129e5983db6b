/**
 * @module cache/blockTable
 *
 * The narrow types at the boundary between the cache and its users: a
 * readonly per-head view for the scheduler, evictors and tests, the slot copy
 * lists the caller applies to K/V storage, and flat Int32Array block tables
 * that an attention kernel takes as they are.
 *
 * Addressing (all of it derived from page ids, PAGE_SIZE = 16):
 * - ring offset r (0 <= r < numRingTokens) lives at slot ringPageIds[r >> 4] * 16 + (r & 15);
 *   the token at absolute position p sits at ring offset p mod W.
 * - global token g (0 <= g < numGlobalTokens) lives at slot globalPageIds[g >> 4] * 16 + (g & 15).
 * A decode query reads every ring offset below numRingTokens and every global token;
 * the positions arrays let a prefill kernel apply the visibility rule of DESIGN.md §3.
 */

import { NULL_PAGE, PAGE_SIZE } from "./blockPool.js";
import { assert, InvalidCacheConfigError } from "./errors.js";

/** Checks that a local window is a positive multiple of PAGE_SIZE, so the ring is whole pages. */
export function validateWindow(window: number): void {
  if (!Number.isInteger(window) || window <= 0 || window % PAGE_SIZE !== 0) {
    const lower = Math.max(PAGE_SIZE, Math.floor(window / PAGE_SIZE) * PAGE_SIZE);
    throw new InvalidCacheConfigError(
      "window",
      `local window W must be a positive multiple of the page size ${PAGE_SIZE}, got ${window}` +
        (Number.isFinite(window) && window > 0 ? ` (try ${lower} or ${lower + PAGE_SIZE})` : ""),
    );
  }
}

/** Live, readonly view of one (sequence, layer, KV head) cache. */
export interface BlockTableView {
  /** Local window W in tokens, a multiple of PAGE_SIZE. */
  readonly window: number;
  /** Ring pages in ring order, allocated lazily: ceil(min(numTokens, W) / 16) of them. */
  readonly ringPageIds: readonly number[];
  /** Global pages, append-only except for eviction, which drops trailing emptied pages. */
  readonly globalPageIds: readonly number[];
  /** Ring offsets in use (0..numRingTokens-1): min(numTokens, W). */
  readonly numRingTokens: number;
  readonly numGlobalTokens: number;
  /** Tokens appended so far (the next position). */
  readonly numTokens: number;
  /** [W] absolute position held by each ring offset, -1 when empty. Do not write. */
  readonly ringPositions: Readonly<Int32Array>;
  /** [W] 1 where the ring token was admitted by the gate (it will be promoted). Do not write. */
  readonly ringAdmitted: Readonly<Uint8Array>;
  /** [numGlobalTokens] absolute position of each global token. Do not write. */
  readonly globalPositions: Readonly<Int32Array>;
}

/**
 * Copies the caller applies to both K and V storage: slot toSlots[i] receives
 * the contents of slot fromSlots[i]. No source is also a destination, so the
 * copies are independent and may run as one parallel kernel.
 */
export interface SlotCopies {
  readonly numCopies: number;
  readonly fromSlots: Int32Array; // [numCopies]
  readonly toSlots: Int32Array; // [numCopies]
}

/** An empty copy list. */
export const NO_COPIES: SlotCopies = Object.freeze({
  numCopies: 0,
  fromSlots: new Int32Array(0),
  toSlots: new Int32Array(0),
});

/** Wraps the first `numCopies` entries of two slot arrays. */
export function toSlotCopies(fromSlots: Int32Array, toSlots: Int32Array, numCopies: number): SlotCopies {
  if (numCopies === 0) return NO_COPIES;
  return { numCopies, fromSlots: fromSlots.subarray(0, numCopies), toSlots: toSlots.subarray(0, numCopies) };
}

/** Concatenates copy lists (e.g. the promotions of every head of a layer). */
export function concatSlotCopies(lists: readonly SlotCopies[]): SlotCopies {
  let numCopies = 0;
  for (const list of lists) numCopies += list.numCopies;
  if (numCopies === 0) return NO_COPIES;
  const fromSlots = new Int32Array(numCopies);
  const toSlots = new Int32Array(numCopies);
  let at = 0;
  for (const list of lists) {
    fromSlots.set(list.fromSlots.subarray(0, list.numCopies), at);
    toSlots.set(list.toSlots.subarray(0, list.numCopies), at);
    at += list.numCopies;
  }
  return { numCopies, fromSlots, toSlots };
}

/** Block tables of several heads (one layer), flattened for a kernel. */
export interface FlatBlockTables {
  readonly numHeads: number;
  readonly window: number;
  /** Row stride of blockTables: W/16 ring entries, then the longest head's global pages. */
  readonly numBlocksPerRow: number;
  /** [numHeads, numBlocksPerRow]: ring pages (NULL_PAGE where not yet allocated), then global pages, NULL_PAGE padding. */
  readonly blockTables: Int32Array;
  readonly numRingTokens: Int32Array; // [numHeads]
  readonly numGlobalTokens: Int32Array; // [numHeads]
  /** [numHeads, W] absolute position per ring offset, -1 when empty. */
  readonly ringPositions: Int32Array;
  /** [numHeads, W] admit flag per ring offset. */
  readonly ringAdmitted: Uint8Array;
  /** [numHeads, numBlocksPerRow * 16 - W] absolute position per global token, -1 padding. */
  readonly globalPositions: Int32Array;
}

/** Copies the views of heads that share one window into flat arrays. */
export function exportBlockTables(views: readonly BlockTableView[]): FlatBlockTables {
  const numHeads = views.length;
  const window = numHeads > 0 ? views[0]!.window : 0;
  const numRingBlocks = window / PAGE_SIZE;
  let maxGlobalPages = 0;
  for (const view of views) maxGlobalPages = Math.max(maxGlobalPages, view.globalPageIds.length);
  const numBlocksPerRow = numRingBlocks + maxGlobalPages;
  const globalStride = maxGlobalPages * PAGE_SIZE;

  const blockTables = new Int32Array(numHeads * numBlocksPerRow).fill(NULL_PAGE);
  const numRingTokens = new Int32Array(numHeads);
  const numGlobalTokens = new Int32Array(numHeads);
  const ringPositions = new Int32Array(numHeads * window);
  const ringAdmitted = new Uint8Array(numHeads * window);
  const globalPositions = new Int32Array(numHeads * globalStride).fill(-1);
  views.forEach((view, h) => {
    assert(view.window === window, "exportBlockTables: heads have different windows");
    const row = h * numBlocksPerRow;
    blockTables.set(view.ringPageIds, row);
    blockTables.set(view.globalPageIds, row + numRingBlocks);
    numRingTokens[h] = view.numRingTokens;
    numGlobalTokens[h] = view.numGlobalTokens;
    ringPositions.set(view.ringPositions, h * window);
    ringAdmitted.set(view.ringAdmitted, h * window);
    globalPositions.set(view.globalPositions.subarray(0, view.numGlobalTokens), h * globalStride);
  });
  return {
    numHeads, window, numBlocksPerRow, blockTables, numRingTokens, numGlobalTokens,
    ringPositions, ringAdmitted, globalPositions,
  };
}

/**
 * Throws a CacheInvariantError unless the view matches the head layout of
 * cache/headCache: ring offset r holds the latest position p < numTokens with
 * p mod W = r; pages cover exactly the ring in use and the global tokens; global
 * tokens are distinct positions that have left the window.
 */
export function checkBlockTableInvariants(view: BlockTableView): void {
  const W = view.window;
  const n = view.numTokens;
  assert(view.numRingTokens === Math.min(n, W), "ring fill");
  assert(view.ringPageIds.length === Math.ceil(Math.min(n, W) / PAGE_SIZE), "ring page count");
  assert(view.globalPageIds.length === Math.ceil(view.numGlobalTokens / PAGE_SIZE), "global page count");
  for (let r = 0; r < W; r++) {
    const p = view.ringPositions[r]!;
    const expected = r < n ? n - 1 - ((n - 1 - r) % W) : -1;
    assert(p === expected, () => `ring offset ${r} holds ${p}, expected ${expected}`);
  }
  const seen = new Set<number>();
  for (let g = 0; g < view.numGlobalTokens; g++) {
    const p = view.globalPositions[g]!;
    assert(p >= 0 && p < n - W && !seen.has(p), () => `global token ${g} has bad position ${p}`);
    seen.add(p);
  }
}
