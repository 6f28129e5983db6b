/**
 * @module kv/kvCacheManager
 *
 * Owns a model's page pool (bookkeeping and backend storage) and hands out
 * sequence caches. The pool is sized for the worst case of the sequences it
 * serves (every token admitted) and grows between sequences when a longer
 * one arrives; what a sequence actually holds is reported page by page.
 */
import type { Backend, KvDType, KvPool } from "../backends/backend.js";
import { BlockPool, PAGE_SIZE } from "../cache/blockPool.js";
import { SequenceCache } from "../cache/sequenceCache.js";
import type { ModelConfig } from "../model/config.js";
import type { KvSettings } from "./kvSettings.js";
import { SequenceKv } from "./sequenceKv.js";

const BYTES_PER_ELEMENT = { f32: 4, f16: 2, bf16: 2 } as const;

/** One page pool: its bookkeeping, its storage and how many sequences use it. */
interface PoolEntry {
  blockPool: BlockPool;
  storage: KvPool;
  numLive: number;
}

export class KvCacheManager {
  readonly #pools = new Map<KvDType, PoolEntry>();

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
  ) {}

  /** A new, empty sequence cache with room for `capacity` tokens under `settings`. */
  createSequence(capacity: number, settings: KvSettings): SequenceKv {
    const { numLayers, numKvHeads, headDim } = this.config;
    // worst case per (layer, KV head): every token admitted, plus the ring and a partial page
    const pagesPerHead = Math.ceil(capacity / PAGE_SIZE) + settings.window / PAGE_SIZE + 1;
    const numPagesNeeded = numLayers * numKvHeads * pagesPerHead + 1;
    let entry = this.#pools.get(settings.kvDType);
    if (!entry || entry.blockPool.numUsablePages < numPagesNeeded - 1) {
      if (entry && entry.numLive > 0) throw new Error("the KV pool cannot grow while a sequence holds pages");
      // NOTE: round up to a power of two so a run of growing requests reallocates rarely.
      const numPages = 2 ** Math.ceil(Math.log2(numPagesNeeded));
      entry = { blockPool: new BlockPool(numPages), storage: this.backend.createKvPool(numPages, headDim, settings.kvDType), numLive: 0 };
      this.#pools.set(settings.kvDType, entry);
    }
    const live = entry;
    const cache = new SequenceCache(live.blockPool, {
      numLayers,
      numKvHeads,
      headDim,
      bytesPerElement: BYTES_PER_ELEMENT[settings.kvDType],
      window: settings.window,
    });
    live.numLive++;
    return new SequenceKv(this.config, settings, this.backend, live.storage, cache, () => live.numLive--);
  }

  /** Checks every pool's invariants and returns the free page counts (tests). */
  checkInvariants(): Map<KvDType, { numFreePages: number; numUsablePages: number }> {
    const out = new Map<KvDType, { numFreePages: number; numUsablePages: number }>();
    for (const [dtype, { blockPool }] of this.#pools) {
      blockPool.checkInvariants();
      out.set(dtype, { numFreePages: blockPool.numFreePages, numUsablePages: blockPool.numUsablePages });
    }
    return out;
  }
}
