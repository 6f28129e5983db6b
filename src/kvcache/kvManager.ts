/**
 * @module kvcache/kvManager
 *
 * The engine's KV memory: one page pool sized once from a memory budget (its
 * bookkeeping here, its bytes on the device), the device tables every
 * sequence slot keeps across steps (block tables, ring admit flags), and the
 * slots themselves. Sequences draw pages step by step; nothing is reserved
 * ahead, so write-gated sequences leave room for more of them.
 */
import { DTYPE_BYTES, type AttentionDims, type Backend, type KvDType, type KvPool, type KvTables } from "../backends/backend.js";
import { InvalidInputError } from "../errors.js";
import { BlockPool, PAGE_SIZE } from "./blockPool.js";
import { assert } from "./errors.js";
import { SequenceCache } from "./sequenceCache.js";

export interface KvManagerOptions {
  /** Pages in the pool (the null page included). */
  readonly numPages: number;
  readonly kvDType: KvDType;
  /** Sequences that may hold a slot at once. */
  readonly numSlots: number;
  /** Largest local window a sequence may use. */
  readonly maxWindow: number;
  /** Longest sequence (tokens): bounds the block tables' rows. */
  readonly maxContext: number;
}

/** Bytes one page holds (K and V of 16 tokens of one KV head). */
export function pageBytes(headDim: number, kvDType: KvDType): number {
  return 2 * PAGE_SIZE * headDim * DTYPE_BYTES[kvDType];
}

export class KvManager {
  readonly blockPool: BlockPool;
  readonly storage: KvPool;
  readonly tables: KvTables;
  readonly #freeSlots: number[];

  constructor(
    readonly backend: Backend,
    readonly dims: AttentionDims,
    readonly options: KvManagerOptions,
  ) {
    const { numPages, kvDType, numSlots, maxWindow, maxContext } = options;
    const { numLayers: L, numKvHeads: H, headDim } = dims;
    this.storage = backend.createKvPool(numPages, headDim, kvDType, L);
    this.blockPool = new BlockPool(numPages, this.storage.numGroups ?? 1);
    const rowStride = maxWindow / PAGE_SIZE + Math.ceil(maxContext / PAGE_SIZE);
    this.tables = {
      blockTables: backend.createTensor([numSlots, L, H, rowStride], "i32", "block tables"),
      ringFlags: backend.createTensor([numSlots, L, H, maxWindow], "u8", "ring admit flags"),
      numSlots,
      rowStride,
      maxWindow,
    };
    // NOTE: slot 0 is taken first (LIFO), so a lone sequence always uses the same table rows
    this.#freeSlots = Array.from({ length: numSlots }, (_, i) => numSlots - 1 - i);
  }

  get kvDType(): KvDType {
    return this.options.kvDType;
  }

  get numFreeSlots(): number {
    return this.#freeSlots.length;
  }

  /** A device table slot, or null when every slot is taken. */
  acquireSlot(): number | null {
    return this.#freeSlots.pop() ?? null;
  }

  releaseSlot(slot: number): void {
    assert(Number.isInteger(slot) && slot >= 0 && slot < this.options.numSlots && !this.#freeSlots.includes(slot), () => `releaseSlot: slot ${slot} is not taken`);
    this.#freeSlots.push(slot);
  }

  /** An empty cache for a sequence with local window `window` (`longSteps`: steps longer than W allowed, kvPolicy.ts takesLongSteps). */
  createCache(window: number, longSteps = false): SequenceCache {
    if (window > this.options.maxWindow) {
      throw new InvalidInputError(`window ${window} exceeds this engine's largest window ${this.options.maxWindow} (set maxWindow when loading the model)`);
    }
    return new SequenceCache(this.blockPool, {
      numLayers: this.dims.numLayers,
      numKvHeads: this.dims.numKvHeads,
      headDim: this.dims.headDim,
      bytesPerElement: DTYPE_BYTES[this.options.kvDType],
      window,
      longSteps,
    });
  }

  /** Frees the pool and the tables on the device. */
  dispose(): void {
    this.backend.destroyKvPool(this.storage);
    this.backend.destroyTensor(this.tables.blockTables);
    this.backend.destroyTensor(this.tables.ringFlags);
  }

  /** Pool invariants (free + owned = usable, no page both) and the slot list; throws a CacheInvariantError. */
  checkInvariants(): void {
    this.blockPool.checkInvariants();
    assert(new Set(this.#freeSlots).size === this.#freeSlots.length, "a slot is free twice");
  }
}
