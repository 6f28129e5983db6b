/**
 * @module kv/kvCacheManager
 *
 * Owns a model's page pools (bookkeeping and backend storage) and hands out
 * sequence caches. Each sequence reserves its worst case (every token
 * admitted) in a pool when it is created, so sequences generating at once can
 * never run each other out of pages mid-way; what a sequence actually holds
 * is reported page by page. A sequence that fits no pool gets a new one (a
 * pool nobody uses is replaced by a larger one instead).
 */
import type { Backend, KvDType, KvPool } from "../backends/backend.js";
import { BlockPool, PAGE_SIZE } from "../cache/blockPool.js";
import { SequenceCache } from "../cache/sequenceCache.js";
import type { ModelConfig } from "../model/config.js";
import type { KvSettings } from "./kvSettings.js";
import { SequenceKv } from "./sequenceKv.js";

const BYTES_PER_ELEMENT = { f32: 4, f16: 2, bf16: 2 } as const;

/** One page pool: its bookkeeping, its storage and the pages its live sequences reserved. */
interface PoolEntry {
  readonly blockPool: BlockPool;
  readonly storage: KvPool;
  numLive: number;
  numReserved: number;
}

export class KvCacheManager {
  readonly #pools = new Map<KvDType, PoolEntry[]>();

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
  ) {}

  /** A new, empty sequence cache with room for `capacity` tokens under `settings`. */
  createSequence(capacity: number, settings: KvSettings): SequenceKv {
    const { numLayers, numKvHeads, headDim } = this.config;
    // worst case per (layer, KV head): every token admitted, plus the ring and a partial page
    const pagesPerHead = Math.ceil(capacity / PAGE_SIZE) + settings.window / PAGE_SIZE + 1;
    const numPagesNeeded = numLayers * numKvHeads * pagesPerHead;
    const entry = this.#poolFor(settings.kvDType, numPagesNeeded);
    const cache = new SequenceCache(entry.blockPool, {
      numLayers,
      numKvHeads,
      headDim,
      bytesPerElement: BYTES_PER_ELEMENT[settings.kvDType],
      window: settings.window,
    });
    entry.numLive++;
    entry.numReserved += numPagesNeeded;
    return new SequenceKv(this.config, settings, this.backend, entry.storage, cache, () => {
      entry.numLive--;
      entry.numReserved -= numPagesNeeded;
    });
  }

  /** A pool with `numPages` unreserved pages: an existing one, a larger replacement of an unused one, or a new one. */
  #poolFor(kvDType: KvDType, numPages: number): PoolEntry {
    const entries = this.#pools.get(kvDType) ?? [];
    this.#pools.set(kvDType, entries);
    const fits = entries.find((e) => e.blockPool.numUsablePages - e.numReserved >= numPages);
    if (fits) return fits;
    // NOTE: round up to a power of two so a run of growing requests reallocates rarely.
    const size = 2 ** Math.ceil(Math.log2(numPages + 1));
    const entry: PoolEntry = { blockPool: new BlockPool(size), storage: this.backend.createKvPool(size, this.config.headDim, kvDType), numLive: 0, numReserved: 0 };
    const unused = entries.findIndex((e) => e.numLive === 0);
    if (unused >= 0) entries[unused] = entry;
    else entries.push(entry);
    return entry;
  }

  /** Checks every pool's invariants and returns the free page counts (tests). */
  checkInvariants(): Map<KvDType, { numFreePages: number; numUsablePages: number }> {
    const out = new Map<KvDType, { numFreePages: number; numUsablePages: number }>();
    for (const [dtype, entries] of this.#pools) {
      let numFreePages = 0, numUsablePages = 0;
      for (const { blockPool, numReserved } of entries) {
        blockPool.checkInvariants();
        if (blockPool.numOwnedPages > numReserved) throw new Error(`a ${dtype} KV pool holds ${blockPool.numOwnedPages} pages, more than the ${numReserved} its sequences reserved`);
        numFreePages += blockPool.numFreePages;
        numUsablePages += blockPool.numUsablePages;
      }
      out.set(dtype, { numFreePages, numUsablePages });
    }
    return out;
  }
}
