/**
 * @module kvcache/sequenceCache
 *
 * One sequence's KV cache: a {@link HeadCache} per (layer, KV head), all drawing
 * pages from one shared {@link BlockPool}, plus the sequence's accounting.
 * Heads grow independently (the cache is ragged): no page is kept for a
 * token that was not admitted (a long step's leaving tokens hold global
 * slots until the next plan drops those their flags rejected).
 *
 * Check, then commit: `numPagesNeeded(numNew)` is exact (a step's new tokens
 * land in rings, or in a long step in global slots too; promotions follow
 * flags learned in earlier steps), so the
 * scheduler checks the pool before `append`, which cannot fail after that.
 *
 * Layouts are flat, head-major within a layer:
 * flags and slot mappings of a step [numLayers, numKvHeads, numNew].
 */

import { assert, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { type BlockPool, PAGE_SIZE } from "./blockPool.js";
import { type BlockTableView, concatSlotCopies, type SlotCopies, validateWindow } from "./blockTable.js";
import { HeadCache, type TableUpdate } from "./headCache.js";

/** Shape of a sequence's cache; validated once at construction. */
export interface SequenceCacheConfig {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Bytes per stored K or V element: 4 for f32, 2 for f16/bf16. */
  readonly bytesPerElement: number;
  /** Local window W in tokens, a multiple of 16. */
  readonly window: number;
  /** Steps may append more than W tokens (headCache.ts; kvPolicy.ts takesLongSteps). */
  readonly longSteps?: boolean;
}

/** What the device must do for one step of the sequence. */
export interface StepAppend {
  readonly numNew: number;
  /** [numLayers, numKvHeads, numNew] ring slot of each new token. */
  readonly slotMapping: Int32Array;
  /** [numLayers] promotions of each layer; apply before the layer's writes. */
  readonly promotions: readonly SlotCopies[];
  /** [numLayers * numKvHeads] the block table entries each head's step allocated. */
  readonly tableUpdates: readonly (readonly TableUpdate[])[];
}

/** A sequence's memory figures, in bytes unless named num*. */
export interface CacheStats {
  readonly numTokens: number;
  readonly numPagesHeld: number;
  /**
   * Whole pages held × 16 × bytes per token per head, once the last long
   * step's rejected keys are dropped (the next step drops them first; until
   * then numPagesHeld and peakBytes count them).
   */
  readonly residentBytes: number;
  readonly peakBytes: number;
  /** What full attention would hold: numTokens × layers × KV heads × 2 × headDim × bytesPerElement. */
  readonly fullAttentionBytes: number;
  /** (layer, KV head, token) entries admitted, evicted ones included. */
  readonly numAdmitted: number;
  readonly numGlobalTokens: number;
}

/** The (layer, KV head) caches of one sequence. */
export class SequenceCache {
  readonly config: SequenceCacheConfig;
  /** K plus V bytes of one token of one KV head. */
  readonly bytesPerToken: number;
  readonly #pool: BlockPool;
  readonly #heads: HeadCache[]; // [numLayers * numKvHeads], layer-major
  #numPeakPages = 0;
  /** The peak before the last append (undoLastAppend). */
  #peakBeforeLast = 0;

  constructor(pool: BlockPool, config: SequenceCacheConfig) {
    for (const field of ["numLayers", "numKvHeads", "headDim", "bytesPerElement"] as const) {
      const value = config[field];
      if (!Number.isInteger(value) || value <= 0) {
        throw new InvalidCacheConfigError(field, `KV cache ${field} must be a positive integer, got ${value}`);
      }
    }
    validateWindow(config.window);
    this.config = Object.freeze({ ...config });
    this.bytesPerToken = 2 * config.headDim * config.bytesPerElement;
    this.#pool = pool;
    // NOTE: a pool of several groups keeps each layer's pages in its group (blockPool.ts)
    this.#heads = Array.from({ length: config.numLayers * config.numKvHeads }, (_, i) => new HeadCache(pool.group(this.#groupOfHead(i)), config.window, config.longSteps ?? false));
  }

  #groupOfHead(i: number): number {
    return this.#pool.groupOfLayer(Math.floor(i / this.config.numKvHeads), this.config.numLayers);
  }

  /** Pages each group of the pool would give a step of `numNew` tokens. */
  #neededByGroup(numNew: number): number[] {
    const needed = new Array<number>(this.#pool.numGroups).fill(0);
    this.#heads.forEach((head, i) => (needed[this.#groupOfHead(i)] += head.numPagesNeeded(numNew)));
    return needed;
  }

  /** Readonly view of one head's block table (live: it changes with the cache). */
  head(layer: number, kvHead: number): BlockTableView {
    return this.#head(layer, kvHead);
  }

  /** Appends whose flags are pending (every head has the same). */
  get numPendingSteps(): number {
    return this.#heads[0]!.numPendingSteps;
  }

  /** Tokens appended so far (every head holds the same positions). */
  get numTokens(): number {
    return this.#heads[0]!.numTokens;
  }

  /**
   * Pages a step of `numNew` (at most W, or any number with long steps) tokens allocates over all heads; exact.
   * With a pool of several groups: numGroups x the most any group gives, to
   * weigh against the pool's numFreePages (blockPool.ts).
   */
  numPagesNeeded(numNew: number): number {
    if (this.#pool.numGroups > 1) return this.#pool.numGroups * Math.max(...this.#neededByGroup(numNew));
    let numPages = 0;
    for (const head of this.#heads) numPages += head.numPagesNeeded(numNew);
    return numPages;
  }

  /**
   * Plans a step of `numNew` tokens on every head.
   * @throws OutOfPagesError before any change if the pool cannot hold it.
   */
  append(numNew: number): StepAppend {
    if (this.#pool.numGroups > 1) {
      this.#neededByGroup(numNew).forEach((n, g) => {
        const group = this.#pool.group(g);
        if (!group.canAllocate(n)) throw new OutOfPagesError(n, group.numFreePages, group.numUsablePages);
      });
    } else {
      const numNeeded = this.numPagesNeeded(numNew);
      if (!this.#pool.canAllocate(numNeeded)) throw new OutOfPagesError(numNeeded, this.#pool.numFreePages, this.#pool.numUsablePages);
    }
    const { numLayers: L, numKvHeads: H } = this.config;
    const slotMapping = new Int32Array(L * H * numNew);
    const promotions: SlotCopies[] = [];
    const tableUpdates: TableUpdate[][] = [];
    for (let l = 0; l < L; l++) {
      const layerCopies: SlotCopies[] = [];
      for (let h = 0; h < H; h++) {
        const plan = this.#heads[l * H + h]!.append(numNew);
        slotMapping.set(plan.slotMapping, (l * H + h) * numNew);
        layerCopies.push(plan.promotions);
        tableUpdates.push([...plan.tableUpdates]);
      }
      promotions.push(concatSlotCopies(layerCopies));
    }
    this.#peakBeforeLast = this.#numPeakPages;
    this.#numPeakPages = Math.max(this.#numPeakPages, this.numPagesHeld);
    return { numNew, slotMapping, promotions, tableUpdates };
  }

  /** Whether a step of `numNew` tokens may be planned before the last step's flags are known (headCache.ts). */
  canAppendBeforeFlags(numNew: number): boolean {
    return this.#heads.every((head) => head.canAppendBeforeFlags(numNew));
  }

  /** Records the admit flags [numLayers, numKvHeads, numNew] of the oldest step whose flags are unknown. */
  commitFlags(flags: ArrayLike<number>, numNew: number): void {
    assert(flags.length === this.#heads.length * numNew, "commitFlags: flags must be [numLayers, numKvHeads, numNew]");
    const view = ArrayBuffer.isView(flags) ? (flags as unknown as Uint8Array) : Uint8Array.from(flags);
    this.#heads.forEach((head, i) => head.commitFlags(view.subarray(i * numNew, (i + 1) * numNew)));
  }

  /** Per head, the last long step's tokens their flags rejected (headCache.ts takeRejected): the next plan drops them first. */
  takeRejected(): { layer: number; head: number; indices: number[] }[] {
    const H = this.config.numKvHeads;
    const out: { layer: number; head: number; indices: number[] }[] = [];
    this.#heads.forEach((h, i) => {
      if (h.numRejected > 0) out.push({ layer: Math.floor(i / H), head: i % H, indices: h.takeRejected() });
    });
    return out;
  }

  /** Evicts global tokens of one head (see {@link HeadCache.dropGlobal}); apply the copies before anything else writes. */
  dropGlobal(layer: number, kvHead: number, indices: ArrayLike<number>): SlotCopies {
    return this.#head(layer, kvHead).dropGlobal(indices);
  }

  /** Takes back the last append, of one token with its flags pending, on every head (headCache.ts undoLastAppend). */
  undoLastAppend(): void {
    for (const head of this.#heads) head.undoLastAppend();
    this.#numPeakPages = this.#peakBeforeLast;
  }

  /** Returns every page of the sequence to the pool; the peak figures are kept. */
  release(): void {
    for (const head of this.#heads) head.release();
  }

  // ---- accounting

  get numPagesHeld(): number {
    let numPages = 0;
    for (const head of this.#heads) numPages += head.numPagesHeld;
    return numPages;
  }

  get residentBytes(): number {
    let numPages = 0;
    for (const head of this.#heads) numPages += head.numPagesSettled;
    return numPages * PAGE_SIZE * this.bytesPerToken;
  }
  get peakBytes(): number { return this.#numPeakPages * PAGE_SIZE * this.bytesPerToken; }
  get fullAttentionBytes(): number { return this.numTokens * this.#heads.length * this.bytesPerToken; }

  /** [numLayers][numKvHeads] tokens each head has admitted. */
  numAdmittedByHead(): number[][] {
    const { numLayers: L, numKvHeads: H } = this.config;
    return Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => this.#heads[l * H + h]!.numAdmittedTotal));
  }

  stats(): CacheStats {
    let numAdmitted = 0;
    let numGlobalTokens = 0;
    for (const head of this.#heads) {
      numAdmitted += head.numAdmittedTotal;
      numGlobalTokens += head.numGlobalTokens - head.numRejected;
    }
    return {
      numTokens: this.numTokens, numPagesHeld: this.numPagesHeld, residentBytes: this.residentBytes,
      peakBytes: this.peakBytes, fullAttentionBytes: this.fullAttentionBytes, numAdmitted, numGlobalTokens,
    };
  }

  /** Checks every head's bookkeeping. */
  checkInvariants(): void {
    for (const head of this.#heads) head.checkInvariants();
  }

  #head(layer: number, kvHead: number): HeadCache {
    const { numLayers, numKvHeads } = this.config;
    assert(layer >= 0 && layer < numLayers && kvHead >= 0 && kvHead < numKvHeads, () => `no head (${layer}, ${kvHead})`);
    return this.#heads[layer * numKvHeads + kvHead]!;
  }
}
