/**
 * @module cache
 *
 * Dual-cache paged KV memory (DESIGN.md §4): page pool, per-head ring + global
 * bookkeeping, per-sequence accounting, and the flat views kernels take.
 */

export { BlockPool, NULL_PAGE, PAGE_SIZE } from "./blockPool.js";
export {
  type BlockTableView, checkBlockTableInvariants, concatSlotCopies, exportBlockTables, type FlatBlockTables,
  NO_COPIES, type SlotCopies, toSlotCopies, validateWindow,
} from "./blockTable.js";
export { CacheInvariantError, InvalidCacheConfigError, OutOfPagesError } from "./errors.js";
export { type AppendResult, type DecodeResult, HeadCache } from "./headCache.js";
export {
  type CacheStats, type LayerAllocation, SequenceCache, type SequenceCacheConfig, type StepAllocation,
} from "./sequenceCache.js";
