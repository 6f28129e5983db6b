/**
 * @module kvcache/headCache
 *
 * The dual cache of one (sequence, layer, KV head): a local ring of the last W
 * tokens and an append-only list of global pages holding the admitted tokens
 * that have left the window (docs/design.md §4). Bookkeeping only: this class
 * hands out slots and copy lists; the device moves the K/V bytes.
 *
 * Plan, then learn. A step appends at most W tokens, so every new token lands
 * in the ring: where it goes never depends on its own admission. What the step
 * promotes (copies to a global page) are the tokens leaving the window, whose
 * flags were learned in earlier steps. So {@link HeadCache.append} plans a
 * step without the new tokens' flags, and {@link HeadCache.commitFlags}
 * records them once the device has decided. One step may be appended while
 * the previous one's flags are still unknown (the engine records a decode
 * step while the one before it runs), as long as none of its leaving tokens
 * is among them and neither is a long step; flags commit oldest first.
 *
 * Long steps (`longSteps`, kvPolicy.ts takesLongSteps: wide GPU matmuls) may
 * append more than W tokens: the last W take ring slots; the others leave the
 * window within the step, before their flags are known, so they go straight
 * to global slots as if admitted. commitFlags notes those flagged 0 as
 * rejected; the next plan drops them ({@link HeadCache.takeRejected}, then
 * dropGlobal) before anything reads the global pages.
 *
 * Invariants: blockTable.ts checkBlockTableInvariants.
 *
 * Hence query numTokens-1 sees, per docs/design.md §3, exactly the ring plus the
 * global tokens. For a step the device must: 1. attend over the view as it was
 * before the step (the ring's positions and flags give the rule for old tokens)
 * plus the step's own fresh K/V; 2. apply the promotions; 3. write the new
 * K/V to the slot mapping.
 */

import { assert, OutOfPagesError } from "./errors.js";
import { PendingSteps } from "./pendingSteps.js";
import { type PageSource, PAGE_SIZE } from "./blockPool.js";
import { type AppendPlan, type BlockTableView, checkBlockTableInvariants, type SlotCopies, type TableUpdate, toSlotCopies, validateWindow } from "./blockTable.js";

export type { AppendPlan, TableUpdate } from "./blockTable.js";

/** Ring + global page bookkeeping of one (sequence, layer, KV head). */
export class HeadCache implements BlockTableView {
  readonly window: number;
  readonly #pool: PageSource;
  readonly #ringPageIds: number[] = [];
  readonly #globalPageIds: number[] = [];
  readonly #ringPositions: Int32Array; // [W] position per ring offset, -1 empty
  readonly #ringAdmitted: Uint8Array; // [W] admit flag per ring offset
  #globalPositions = new Int32Array(PAGE_SIZE); // [capacity >= numGlobal] position per global token
  #numTokens = 0;
  #numGlobal = 0;
  #numAdmittedTotal = 0;
  #numPeakPages = 0;
  readonly #pending = new PendingSteps();
  /** A step may append more than W tokens. */
  readonly longSteps: boolean;
  /** Global index of the first token the last append wrote straight to a global slot (a long step). */
  #firstDirectGlobal = 0;
  /** Global indices of the last long step's tokens that their flags rejected, not yet taken. */
  #rejected: number[] = [];

  /** @param pool where the head's pages come from: the pool, or its layer's group of it */
  constructor(pool: PageSource, window: number, longSteps = false) {
    validateWindow(window);
    this.#pool = pool;
    this.window = window;
    this.longSteps = longSteps;
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
  /** Tokens the policy ever admitted here, including those still in the ring or since evicted. */
  get numAdmittedTotal(): number { return this.#numAdmittedTotal; }
  get numPagesHeld(): number { return this.#ringPageIds.length + this.#globalPageIds.length; }
  /** Pages held once the last long step's rejected tokens are dropped (what the next step keeps; peak counts them). */
  get numPagesSettled(): number { return this.#ringPageIds.length + Math.ceil((this.#numGlobal - this.#rejected.length) / PAGE_SIZE); }
  get numPeakPages(): number { return this.#numPeakPages; }
  /** The last long step's rejected tokens not yet taken. */
  get numRejected(): number { return this.#rejected.length; }
  /** True while some step's admit flags are unknown. */
  get hasPendingFlags(): boolean { return this.#pending.numSteps > 0; }
  get numPendingSteps(): number { return this.#pending.numSteps; }

  slotOfRing(offset: number): number { return this.#ringPageIds[offset >> 4]! * PAGE_SIZE + (offset & (PAGE_SIZE - 1)); }
  slotOfGlobal(index: number): number { return this.#globalPageIds[index >> 4]! * PAGE_SIZE + (index & (PAGE_SIZE - 1)); }

  // ---- check

  /** Most tokens one step may append: W, or any number with long steps. */
  get maxStepTokens(): number {
    return this.longSteps ? Infinity : this.window;
  }

  /**
   * Pages that appending `numNew` (at most maxStepTokens) tokens allocates
   * once the rejected tokens are dropped: exact, as promotions depend only on
   * known flags and a long step's own leaving tokens are all given slots.
   */
  numPagesNeeded(numNew: number): number {
    const start = this.#numTokens;
    const end = start + numNew;
    const W = this.window;
    assert(numNew <= this.maxStepTokens, () => `a step appends at most W = ${W} tokens, got ${numNew}`);
    assert(this.canAppendBeforeFlags(numNew), "the earlier steps' admit flags were never committed");
    const numRingPages = Math.ceil(Math.min(W, end) / PAGE_SIZE);
    const numKept = this.#numGlobal - this.#rejected.length;
    let numGlobal = numKept;
    // NOTE: leaving tokens from before the step follow their flags; the step's own (a long step) all take slots
    for (let q = Math.max(0, start - W); q < Math.min(start, end - W); q++) if (this.#ringAdmitted[q % W]) numGlobal++;
    numGlobal += Math.max(0, end - W - start);
    return numRingPages - this.#ringPageIds.length + Math.ceil(numGlobal / PAGE_SIZE) - Math.ceil(numKept / PAGE_SIZE);
  }

  // ---- commit

  /** Whether a step of `numNew` tokens may be planned before the pending flags are known (see the module's note). */
  canAppendBeforeFlags(numNew: number): boolean {
    const p = this.#pending;
    if (p.numSteps === 0) return true;
    // NOTE: a short step after one short step, whose leaving tokens all precede the pending ones
    return p.numSteps === 1 && p.oldest <= this.window && numNew <= this.window && this.#rejected.length === 0 && this.#numTokens + numNew - this.window <= this.#numTokens - p.numTokens;
  }

  /**
   * Appends `numNew` (at most maxStepTokens) tokens at positions numTokens..:
   * each takes the ring slot of the token W positions before it; those
   * leaving the window go to global pages if they were admitted (promotion),
   * else are dropped. In a long step the step's own tokens that leave within
   * it take global slots at once. Their own flags follow in
   * {@link commitFlags}. Atomic: throws before any change.
   * @throws OutOfPagesError if the pool cannot hold the new pages.
   */
  append(numNew: number): AppendPlan {
    const r = this.#numTokens % this.window;
    const before = [this.#numTokens, this.#numGlobal, this.#ringPageIds.length, this.#globalPageIds.length, this.#ringPositions[r], this.#ringAdmitted[r], this.#numPeakPages] as const;
    assert(this.#rejected.length === 0, "the last long step's rejected tokens were never taken (takeRejected, then dropGlobal)");
    const numNeeded = this.numPagesNeeded(numNew);
    if (!this.#pool.canAllocate(numNeeded)) throw new OutOfPagesError(numNeeded, this.#pool.numFreePages, this.#pool.numUsablePages);
    const start = this.#numTokens;
    const end = start + numNew;
    const W = this.window;
    const tableUpdates: TableUpdate[] = [];
    while (this.#ringPageIds.length * PAGE_SIZE < Math.min(W, end)) {
      const page = this.#pool.allocateOne();
      tableUpdates.push({ index: this.#ringPageIds.length, page });
      this.#ringPageIds.push(page);
    }
    const leaveStart = Math.max(0, start - W);
    const leaveEnd = Math.max(leaveStart, end - W);
    const fromSlots = new Int32Array(leaveEnd - leaveStart);
    const toSlots = new Int32Array(leaveEnd - leaveStart);
    let numCopies = 0;
    for (let q = leaveStart; q < Math.min(start, leaveEnd); q++) {
      if (!this.#ringAdmitted[q % W]) continue;
      fromSlots[numCopies] = this.slotOfRing(q % W);
      toSlots[numCopies++] = this.#pushGlobal(q, tableUpdates);
    }
    const slotMapping = new Int32Array(numNew);
    this.#firstDirectGlobal = this.#numGlobal;
    for (let p = start; p < end; p++) {
      // NOTE: only in a long step (numNew > W): gone from the window before the step ends, kept until its flag says otherwise
      if (p < end - W) {
        slotMapping[p - start] = this.#pushGlobal(p, tableUpdates);
        continue;
      }
      this.#ringPositions[p % W] = p;
      this.#ringAdmitted[p % W] = 0;
      slotMapping[p - start] = this.slotOfRing(p % W);
    }
    this.#numTokens = end;
    this.#pending.push(numNew, before);
    this.#numPeakPages = Math.max(this.#numPeakPages, this.numPagesHeld);
    return { slotMapping, promotions: toSlotCopies(fromSlots, toSlots, numCopies), tableUpdates };
  }

  /**
   * Records the admit flags (nonzero = admitted) of the tokens of the oldest
   * append whose flags are unknown, in position order. Tokens of a long step that went straight to
   * global slots and are not admitted become rejected (takeRejected).
   */
  commitFlags(admitted: ArrayLike<number>): void {
    const count = this.#pending.oldest;
    assert(admitted.length === count, () => `commitFlags: ${admitted.length} flags for ${count} pending tokens`);
    const W = this.window;
    const start = this.#numTokens - this.#pending.numTokens;
    const numDirect = Math.max(0, count - W);
    for (let i = 0; i < admitted.length; i++) {
      const isAdmitted = admitted[i] ? 1 : 0;
      if (i < numDirect) {
        if (!isAdmitted) this.#rejected.push(this.#firstDirectGlobal + i);
      } else {
        this.#ringAdmitted[(start + i) % W] = isAdmitted;
      }
      this.#numAdmittedTotal += isAdmitted;
    }
    this.#pending.shift();
  }

  /** Hands over (and forgets) the global indices of the last long step's rejected tokens: the next plan drops them first. */
  takeRejected(): number[] {
    const rejected = this.#rejected;
    this.#rejected = [];
    return rejected;
  }

  /**
   * Evicts global tokens by index (0..numGlobalTokens-1, distinct), compacts
   * the rest and returns emptied trailing pages to the pool. The caller applies
   * the returned copies to K/V storage.
   * NOTE: copy sources may lie in pages just freed; apply them before anything
   * else allocates and writes.
   */
  dropGlobal(indices: ArrayLike<number>): SlotCopies {
    this.#pending.forgetUndo();
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

  /** Takes back the last one-token append, flags pending (a step recorded ahead for a sequence that ended before it: engine/stepChain.ts); the device may still write its slots, which nothing reads again. */
  undoLastAppend(): void {
    assert(this.#pending.canUndo, "undoLastAppend: the last change was not a pending one-token append");
    const [numTokens, numGlobal, ringPages, globalPages, ringPosition, ringAdmitted, peak] = this.#pending.before;
    this.#pool.free(this.#ringPageIds.splice(ringPages));
    this.#pool.free(this.#globalPageIds.splice(globalPages));
    this.#ringPositions[numTokens % this.window] = ringPosition;
    this.#ringAdmitted[numTokens % this.window] = ringAdmitted;
    [this.#numTokens, this.#numGlobal, this.#numPeakPages] = [numTokens, numGlobal, peak];
    this.#pending.pop();
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
    this.#pending.clear();
    this.#rejected = [];
  }

  /** Throws a CacheInvariantError if the head's bookkeeping is inconsistent. */
  checkInvariants(): void {
    checkBlockTableInvariants(this);
  }

  #pushGlobal(position: number, tableUpdates: TableUpdate[]): number {
    if (this.#numGlobal === this.#globalPageIds.length * PAGE_SIZE) {
      const page = this.#pool.allocateOne();
      tableUpdates.push({ index: this.window / PAGE_SIZE + this.#globalPageIds.length, page });
      this.#globalPageIds.push(page);
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
