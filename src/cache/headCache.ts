/**
 * @module cache/headCache
 *
 * The dual cache of one (sequence, layer, KV head): a local ring of the last W
 * tokens and an append-only list of global pages holding the admitted tokens
 * that have left the window (DESIGN.md §4). Bookkeeping only: this class hands
 * out slots and copy lists; the caller moves the K/V bytes.
 *
 * Invariants (checked by {@link HeadCache.checkInvariants}, tracked through the view):
 * - Positions arrive in order 0, 1, 2, ...; the token at position p < numTokens
 *   is in the ring iff p >= numTokens - W, at ring offset p mod W.
 * - Ring pages are allocated lazily, in ring order, as offsets are first used:
 *   ceil(min(numTokens, W) / 16) of them, all W/16 once numTokens >= W.
 * - Global tokens are exactly the admitted tokens with p < numTokens - W that no
 *   evictor dropped, densely packed: globalPageIds.length = ceil(numGlobal / 16).
 *   They are appended in position order; eviction may reorder them (attention
 *   does not care, as keys are stored after RoPE, and globalPositions follows).
 *
 * Hence query numTokens-1 sees, per DESIGN.md §3, exactly the ring plus the global
 * tokens. For a multi-token append (prefill chunk) the caller must:
 *   1. run the chunk's attention over the view *before* committing (the ring's
 *      positions and admit flags give the rule for old tokens) plus the chunk's
 *      own fresh K/V, since the chunk overwrites ring slots its earlier queries read;
 *   2. commit with {@link HeadCache.append}; 3. apply the promotions; 4. write the
 *   new K/V to the slot mapping. A single decode token may write before attending.
 */

import { assert, OutOfPagesError } from "./errors.js";
import { type BlockPool, PAGE_SIZE } from "./blockPool.js";
import { type BlockTableView, checkBlockTableInvariants, type SlotCopies, toSlotCopies, validateWindow } from "./blockTable.js";

/** What the caller must do with K/V storage after an append. */
export interface AppendResult {
  /** [numNew] slot each new token is written to, or -1 (left the window unadmitted: never written). */
  readonly slotMapping: Int32Array;
  /** Ring-to-global copies of admitted tokens leaving the window; apply BEFORE the writes. */
  readonly promotions: SlotCopies;
}

/** A decode step's plan; `promoteFrom`/`promoteTo` are -1 when nothing is promoted. */
export interface DecodeResult {
  readonly slot: number;
  readonly promoteFrom: number;
  readonly promoteTo: number;
}

/** Ring + global page bookkeeping of one (sequence, layer, KV head). */
export class HeadCache implements BlockTableView {
  readonly window: number;
  readonly #pool: BlockPool;
  readonly #ringPageIds: number[] = [];
  readonly #globalPageIds: number[] = [];
  readonly #ringPositions: Int32Array; // [W] position per ring offset, -1 empty
  readonly #ringAdmitted: Uint8Array; // [W] admit flag per ring offset
  #globalPositions = new Int32Array(PAGE_SIZE); // [capacity >= numGlobal] position per global token
  #numTokens = 0;
  #numGlobal = 0;
  #numAdmittedTotal = 0;
  #numPeakPages = 0;

  constructor(pool: BlockPool, window: number) {
    validateWindow(window);
    this.#pool = pool;
    this.window = window;
    this.#ringPositions = new Int32Array(window).fill(-1);
    this.#ringAdmitted = new Uint8Array(window);
  }

  // ---- view and counts

  get ringPageIds(): readonly number[] { return this.#ringPageIds; }
  get globalPageIds(): readonly number[] { return this.#globalPageIds; }
  get ringPositions(): Readonly<Int32Array> { return this.#ringPositions; }
  get ringAdmitted(): Readonly<Uint8Array> { return this.#ringAdmitted; }
  get globalPositions(): Readonly<Int32Array> { return this.#globalPositions.subarray(0, this.#numGlobal); }
  get numTokens(): number { return this.#numTokens; }
  get numRingTokens(): number { return Math.min(this.#numTokens, this.window); }
  get numGlobalTokens(): number { return this.#numGlobal; }
  /** Tokens the gate ever admitted here, including those still in the ring or since evicted. */
  get numAdmittedTotal(): number { return this.#numAdmittedTotal; }
  get numPagesHeld(): number { return this.#ringPageIds.length + this.#globalPageIds.length; }
  get numPeakPages(): number { return this.#numPeakPages; }

  /** Bytes held, whole pages counted; `bytesPerToken` covers K and V of one token of one head. */
  residentBytes(bytesPerToken: number): number {
    return this.numPagesHeld * PAGE_SIZE * bytesPerToken;
  }

  slotOfRing(offset: number): number {
    return this.#ringPageIds[offset >> 4]! * PAGE_SIZE + (offset & (PAGE_SIZE - 1));
  }

  slotOfGlobal(index: number): number {
    return this.#globalPageIds[index >> 4]! * PAGE_SIZE + (index & (PAGE_SIZE - 1));
  }

  // ---- check

  /**
   * Pages that appending `numNew` tokens would allocate: exact given their admit
   * flags, the worst case (every new token admitted) given `null`.
   */
  numPagesNeeded(numNew: number, admitted: ArrayLike<number> | null): number {
    const start = this.#numTokens;
    const end = start + numNew;
    const W = this.window;
    const numRingPages = Math.ceil(Math.min(W, end) / PAGE_SIZE);
    let numGlobal = this.#numGlobal;
    for (let q = Math.max(0, start - W); q < Math.min(start, end - W); q++) {
      if (this.#ringAdmitted[q % W]) numGlobal++;
    }
    for (let p = start; p < end - W; p++) {
      if (admitted === null || admitted[p - start]) numGlobal++;
    }
    // NOTE: globalPageIds.length === ceil(numGlobal / 16) always, so this is >= 0.
    const numGlobalPages = Math.ceil(numGlobal / PAGE_SIZE) - this.#globalPageIds.length;
    return numRingPages - this.#ringPageIds.length + numGlobalPages;
  }

  /** True if the pool can hold the append of these tokens now. */
  canAppend(admitted: ArrayLike<number>): boolean {
    return this.#pool.canAllocate(this.numPagesNeeded(admitted.length, admitted));
  }

  // ---- commit

  /**
   * Appends tokens at positions numTokens.. with their admit flags (nonzero =
   * admitted): chunked prefill, or several decode tokens at once. The last
   * min(numTokens, W) tokens end in the ring; admitted tokens leaving it go to
   * global pages in position order (old ring tokens by promotion, new ones by
   * a direct write); the rest are dropped. Atomic: throws before any change.
   * @throws OutOfPagesError if the pool cannot hold the new pages.
   */
  append(admitted: ArrayLike<number>): AppendResult {
    const numNew = admitted.length;
    const numNeeded = this.numPagesNeeded(numNew, admitted);
    if (!this.#pool.canAllocate(numNeeded)) {
      throw new OutOfPagesError(numNeeded, this.#pool.numFreePages, this.#pool.numUsablePages);
    }
    const start = this.#numTokens;
    const end = start + numNew;
    const W = this.window;
    while (this.#ringPageIds.length * PAGE_SIZE < Math.min(W, end)) this.#ringPageIds.push(this.#pool.allocateOne());

    const leaveStart = Math.max(0, start - W);
    const leaveEnd = Math.max(leaveStart, Math.min(start, end - W));
    const fromSlots = new Int32Array(leaveEnd - leaveStart);
    const toSlots = new Int32Array(leaveEnd - leaveStart);
    let numCopies = 0;
    for (let q = leaveStart; q < leaveEnd; q++) {
      if (!this.#ringAdmitted[q % W]) continue;
      fromSlots[numCopies] = this.slotOfRing(q % W);
      toSlots[numCopies++] = this.#pushGlobal(q);
    }
    const slotMapping = new Int32Array(numNew).fill(-1);
    for (let p = start; p < end; p++) {
      const isAdmitted = admitted[p - start] ? 1 : 0;
      this.#numAdmittedTotal += isAdmitted;
      if (p < end - W) {
        if (isAdmitted) slotMapping[p - start] = this.#pushGlobal(p);
      } else {
        this.#ringPositions[p % W] = p;
        this.#ringAdmitted[p % W] = isAdmitted;
        slotMapping[p - start] = this.slotOfRing(p % W);
      }
    }
    this.#numTokens = end;
    this.#numPeakPages = Math.max(this.#numPeakPages, this.numPagesHeld);
    return { slotMapping, promotions: toSlotCopies(fromSlots, toSlots, numCopies) };
  }

  /** Prefill of an empty head: {@link append} of the whole prompt. */
  planPrefill(numTokens: number, admitted: ArrayLike<number>): AppendResult {
    assert(this.#numTokens === 0, () => `planPrefill on a head already holding ${this.#numTokens} tokens; use append`);
    assert(admitted.length === numTokens, () => `planPrefill: ${admitted.length} admit flags for ${numTokens} tokens`);
    return this.append(admitted);
  }

  /**
   * One decode token at `position` (= numTokens). It takes the ring slot of
   * position - W; if that token was admitted it is first promoted (copy
   * promoteFrom -> promoteTo before writing `slot`).
   */
  appendDecode(position: number, admitted: boolean): DecodeResult {
    assert(position === this.#numTokens, () => `appendDecode at ${position}, expected position ${this.#numTokens}`);
    const { slotMapping, promotions } = this.append([admitted ? 1 : 0]);
    const promoted = promotions.numCopies > 0;
    return {
      slot: slotMapping[0]!,
      promoteFrom: promoted ? promotions.fromSlots[0]! : -1,
      promoteTo: promoted ? promotions.toSlots[0]! : -1,
    };
  }

  /**
   * Evicts global tokens by index (0..numGlobalTokens-1, distinct), compacts
   * the rest and returns emptied trailing pages to the pool. The caller applies
   * the returned copies to K/V storage.
   * NOTE: copy sources may lie in pages just freed; apply them before anything
   * else allocates and writes.
   */
  dropGlobal(indices: ArrayLike<number>): SlotCopies {
    const numGlobal = this.#numGlobal;
    const isDropped = new Uint8Array(numGlobal);
    for (let i = 0; i < indices.length; i++) {
      const g = indices[i]!;
      assert(Number.isInteger(g) && g >= 0 && g < numGlobal && !isDropped[g], () => `dropGlobal: bad or repeated index ${g}`);
      isDropped[g] = 1;
    }
    const numKept = numGlobal - indices.length;
    // NOTE: holes below numKept are filled from kept tokens at or above it, so every
    // source is >= numKept and every destination < numKept: at most one copy per
    // dropped token, and no copy reads a slot another one writes.
    const fromSlots = new Int32Array(indices.length);
    const toSlots = new Int32Array(indices.length);
    let numCopies = 0;
    let src = numKept;
    for (let dst = 0; dst < numKept; dst++) {
      if (!isDropped[dst]) continue;
      while (isDropped[src]) src++;
      fromSlots[numCopies] = this.slotOfGlobal(src);
      toSlots[numCopies++] = this.slotOfGlobal(dst);
      this.#globalPositions[dst] = this.#globalPositions[src]!;
      src++;
    }
    this.#numGlobal = numKept;
    this.#pool.free(this.#globalPageIds.splice(Math.ceil(numKept / PAGE_SIZE)));
    return toSlotCopies(fromSlots, toSlots, numCopies);
  }

  /** Returns every page to the pool and empties the head (peak is kept). */
  release(): void {
    this.#pool.free(this.#ringPageIds.splice(0));
    this.#pool.free(this.#globalPageIds.splice(0));
    this.#ringPositions.fill(-1);
    this.#ringAdmitted.fill(0);
    this.#numTokens = 0;
    this.#numGlobal = 0;
    this.#numAdmittedTotal = 0;
  }

  /** Throws a CacheInvariantError if the head's bookkeeping is inconsistent (tests). */
  checkInvariants(): void {
    checkBlockTableInvariants(this);
  }

  #pushGlobal(position: number): number {
    if (this.#numGlobal === this.#globalPageIds.length * PAGE_SIZE) {
      this.#globalPageIds.push(this.#pool.allocateOne());
      if (this.#globalPositions.length < this.#numGlobal + PAGE_SIZE) {
        const grown = new Int32Array(2 * this.#globalPositions.length);
        grown.set(this.#globalPositions);
        this.#globalPositions = grown;
      }
    }
    this.#globalPositions[this.#numGlobal] = position;
    return this.slotOfGlobal(this.#numGlobal++);
  }
}
