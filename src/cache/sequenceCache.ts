/**
 * @module cache/sequenceCache
 *
 * One sequence's KV cache: a {@link HeadCache} per (layer, KV head), all drawing
 * pages from one shared {@link BlockPool}, plus the sequence's accounting.
 * Heads grow independently (the cache is ragged): no page is reserved for a
 * token that was not admitted.
 *
 * Check, then commit. The gate decides per layer during the forward pass, so a
 * scheduler checks a step with the worst case, `canAllocate(numNew)` (every new
 * token admitted; tight for decode, bounded by the chunk size for prefill), and
 * then each layer commits its real decisions with {@link SequenceCache.allocateLayer}.
 * When every decision is known up front, `canAllocate(numNew, admitted)` is exact
 * and {@link SequenceCache.allocate} commits all layers at once.
 *
 * Flag and slot layouts are flat, head-major within a layer:
 * admitted / slotMapping of a step [numLayers, numKvHeads, numNew], of a layer [numKvHeads, numNew].
 */

import { assert, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
import { type BlockPool, PAGE_SIZE } from "./blockPool.js";
import {
  type BlockTableView, concatSlotCopies, exportBlockTables, type FlatBlockTables, type SlotCopies, validateWindow,
} from "./blockTable.js";
import { HeadCache } from "./headCache.js";

/** Shape of a sequence's cache; validated once at construction. */
export interface SequenceCacheConfig {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Bytes per stored K or V element: 4 for f32, 2 for f16/bf16. */
  readonly bytesPerElement: number;
  /** Local window W in tokens, a multiple of 16. */
  readonly window: number;
}

/** Slots and copies for one layer's append; apply the promotions before the writes. */
export interface LayerAllocation {
  readonly slotMapping: Int32Array; // [numKvHeads, numNew], -1 = not written
  readonly promotions: SlotCopies;
}

/** Slots and copies for a whole step's append. */
export interface StepAllocation {
  readonly slotMapping: Int32Array; // [numLayers, numKvHeads, numNew], -1 = not written
  readonly promotions: SlotCopies;
}

/** A sequence's memory figures, in bytes unless named num*. */
export interface CacheStats {
  readonly numTokens: number;
  readonly numPagesHeld: number;
  /** Whole pages held × 16 × bytes per token per head. */
  readonly residentBytes: number;
  readonly peakBytes: number;
  /** What full attention would hold: numTokens × layers × KV heads × 2 × headDim × bytesPerElement. */
  readonly fullAttentionBytes: number;
  /** (layer, KV head, token) entries the gate admitted, evicted ones included. */
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
    this.#heads = Array.from({ length: config.numLayers * config.numKvHeads }, () => new HeadCache(pool, config.window));
  }

  /** Readonly view of one head's block table (live: it changes with the cache). */
  head(layer: number, kvHead: number): BlockTableView {
    return this.#head(layer, kvHead);
  }

  /** Tokens every layer has committed. */
  get numTokens(): number {
    let numTokens = Infinity;
    for (let l = 0; l < this.config.numLayers; l++) numTokens = Math.min(numTokens, this.#heads[l * this.config.numKvHeads]!.numTokens);
    return numTokens;
  }

  // ---- check

  /**
   * Pages a step of `numNew` tokens would allocate over all layers: exact given
   * the admit flags [numLayers, numKvHeads, numNew], worst case without them.
   */
  numPagesNeeded(numNew: number, admitted: Uint8Array | null = null): number {
    assert(admitted === null || admitted.length === this.#heads.length * numNew, "admitted must be [numLayers, numKvHeads, numNew]");
    let numPages = 0;
    this.#heads.forEach((head, i) => {
      numPages += head.numPagesNeeded(numNew, admitted && admitted.subarray(i * numNew, (i + 1) * numNew));
    });
    return numPages;
  }

  /** True if the pool can hold the step now (worst case when `admitted` is omitted). */
  canAllocate(numNew: number, admitted: Uint8Array | null = null): boolean {
    return this.#pool.canAllocate(this.numPagesNeeded(numNew, admitted));
  }

  // ---- commit

  /**
   * Commits one layer's `numNew` tokens with its admit flags [numKvHeads, numNew].
   * @throws OutOfPagesError before any change if the pool cannot hold them.
   */
  allocateLayer(layer: number, numNew: number, admitted: Uint8Array): LayerAllocation {
    const H = this.config.numKvHeads;
    assert(admitted.length === H * numNew, "admitted must be [numKvHeads, numNew]");
    const flags = (h: number) => admitted.subarray(h * numNew, (h + 1) * numNew);
    let numNeeded = 0;
    for (let h = 0; h < H; h++) numNeeded += this.#head(layer, h).numPagesNeeded(numNew, flags(h));
    if (!this.#pool.canAllocate(numNeeded)) {
      throw new OutOfPagesError(numNeeded, this.#pool.numFreePages, this.#pool.numUsablePages);
    }
    const slotMapping = new Int32Array(H * numNew);
    const promotions: SlotCopies[] = [];
    for (let h = 0; h < H; h++) {
      const result = this.#head(layer, h).append(flags(h));
      slotMapping.set(result.slotMapping, h * numNew);
      promotions.push(result.promotions);
    }
    this.#numPeakPages = Math.max(this.#numPeakPages, this.numPagesHeld);
    return { slotMapping, promotions: concatSlotCopies(promotions) };
  }

  /**
   * Commits a step on every layer with admit flags [numLayers, numKvHeads, numNew].
   * @throws OutOfPagesError before any change if the pool cannot hold it.
   */
  allocate(numNew: number, admitted: Uint8Array): StepAllocation {
    const numNeeded = this.numPagesNeeded(numNew, admitted);
    if (!this.#pool.canAllocate(numNeeded)) {
      throw new OutOfPagesError(numNeeded, this.#pool.numFreePages, this.#pool.numUsablePages);
    }
    const perLayer = this.config.numKvHeads * numNew;
    const slotMapping = new Int32Array(this.config.numLayers * perLayer);
    const promotions: SlotCopies[] = [];
    for (let l = 0; l < this.config.numLayers; l++) {
      const result = this.allocateLayer(l, numNew, admitted.subarray(l * perLayer, (l + 1) * perLayer));
      slotMapping.set(result.slotMapping, l * perLayer);
      promotions.push(result.promotions);
    }
    return { slotMapping, promotions: concatSlotCopies(promotions) };
  }

  /** Evicts global tokens of one head (see {@link HeadCache.dropGlobal}); apply the copies at once. */
  dropGlobal(layer: number, kvHead: number, indices: ArrayLike<number>): SlotCopies {
    return this.#head(layer, kvHead).dropGlobal(indices);
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

  get residentBytes(): number { return this.numPagesHeld * PAGE_SIZE * this.bytesPerToken; }
  get peakBytes(): number { return this.#numPeakPages * PAGE_SIZE * this.bytesPerToken; }
  get fullAttentionBytes(): number { return this.numTokens * this.#heads.length * this.bytesPerToken; }

  /** [numLayers, numKvHeads] bytes each head holds now. */
  residentBytesByHead(): Float64Array {
    return Float64Array.from(this.#heads, (head) => head.residentBytes(this.bytesPerToken));
  }

  /** [numLayers, numKvHeads] the most bytes each head has held. */
  peakBytesByHead(): Float64Array {
    return Float64Array.from(this.#heads, (head) => head.numPeakPages * PAGE_SIZE * this.bytesPerToken);
  }

  /** [numLayers, numKvHeads] tokens each head's gate has admitted. */
  numAdmittedByHead(): Int32Array {
    return Int32Array.from(this.#heads, (head) => head.numAdmittedTotal);
  }

  stats(): CacheStats {
    let numAdmitted = 0;
    let numGlobalTokens = 0;
    for (const head of this.#heads) {
      numAdmitted += head.numAdmittedTotal;
      numGlobalTokens += head.numGlobalTokens;
    }
    return {
      numTokens: this.numTokens, numPagesHeld: this.numPagesHeld, residentBytes: this.residentBytes,
      peakBytes: this.peakBytes, fullAttentionBytes: this.fullAttentionBytes, numAdmitted, numGlobalTokens,
    };
  }

  /** One layer's block tables, flattened for an attention kernel. */
  blockTables(layer: number): FlatBlockTables {
    const start = layer * this.config.numKvHeads;
    return exportBlockTables(this.#heads.slice(start, start + this.config.numKvHeads));
  }

  /** Checks every head's bookkeeping (tests). */
  checkInvariants(): void {
    for (const head of this.#heads) head.checkInvariants();
  }

  #head(layer: number, kvHead: number): HeadCache {
    const { numLayers, numKvHeads } = this.config;
    assert(layer >= 0 && layer < numLayers && kvHead >= 0 && kvHead < numKvHeads, () => `no head (${layer}, ${kvHead})`);
    return this.#heads[layer * numKvHeads + kvHead]!;
  }
}
