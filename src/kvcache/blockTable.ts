/**
 * @module kvcache/blockTable
 *
 * The narrow types at the boundary between the cache and its users: a
 * readonly per-head view for the planner, evictors and tests, and the slot
 * copy lists the device applies to K/V storage.
 *
 * Addressing (all of it derived from page ids, PAGE_SIZE = 16):
 * - ring offset r (0 <= r < numRingTokens) lives at slot ringPageIds[r >> 4] * 16 + (r & 15);
 *   the token at absolute position p sits at ring offset p mod W.
 * - global token g (0 <= g < numGlobalTokens) lives at slot globalPageIds[g >> 4] * 16 + (g & 15).
 * A decode query reads every ring offset below numRingTokens and every global token;
 * the positions arrays let a prefill kernel apply the visibility rule of docs/design.md §3.
 */

import { PAGE_SIZE } from "./blockPool.js";
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

/**
 * Throws a CacheInvariantError unless the view matches the head layout of
 * cache/headCache: ring offset r holds the latest position p < numTokens with
 * p mod W = r; pages cover exactly the ring in use and the global tokens; global
 * tokens are distinct positions that have left the window. The head's invariants, in full:
 *
 * - Positions arrive in order 0, 1, 2, ...; the token at position p < numTokens
 *   is in the ring iff p >= numTokens - W, at ring offset p mod W.
 * - Ring pages are allocated lazily, in ring order, as offsets are first used:
 *   ceil(min(numTokens, W) / 16) of them, all W/16 once numTokens >= W.
 * - Global tokens are exactly the admitted tokens with p < numTokens - W that no
 *   evictor dropped, plus the rejected ones of the last long step until they
 *   are taken, densely packed: globalPageIds.length = ceil(numGlobal / 16).
 *   They are appended in position order; eviction may reorder them (attention
 *   does not care, as keys are stored after RoPE, and globalPositions follows).
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

/** A block table entry that changed: entry `index` of the head's row (ring pages first, then global) now names `page`. */
export interface TableUpdate {
  readonly index: number;
  readonly page: number;
}

/** What the device must do for a step of this head. */
export interface AppendPlan {
  /** [numNew] ring slot each new token is written to. */
  readonly slotMapping: Int32Array;
  /** Ring-to-global copies of admitted tokens leaving the window; apply BEFORE the writes. */
  readonly promotions: SlotCopies;
  /** Pages the step allocated, as block table entries (ring index i at i, global index j at W/16 + j). */
  readonly tableUpdates: readonly TableUpdate[];
}
