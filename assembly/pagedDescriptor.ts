// The descriptor of one paged-attention call, written by the host
// (src/backends/cpu/wasm/pagedAttentionPlan.ts mirrors these slots): i32
// slots (SCALE is f32), then entries of ENTRY slots: the tasks
// [g, h0, h1, r0, r1, b0, b1, partialRow (-1: final)], then the reduce
// entries [0, h0, h1, r0, r1, firstPartialRow, numSplits, 0].

export const OUT = 0, Q = 1, K_FRESH = 2, V_FRESH = 3, K_PAGES = 4, V_PAGES = 5, TABLES = 6, NUM_RING = 7, NUM_GLOBAL = 8;
export const RING_POS = 9, RING_ADM = 10, T = 11, QPOS0 = 12, HQ = 13, HKV = 14, D = 15, SCALE = 16, W = 17, ROW_STRIDE = 18;
export const DTYPE = 19, PARTIALS = 20, NUM_TASKS = 21;
export const ENTRIES_AT = 32, ENTRY = 8;
/** Floats per partial row: m, l, 2 pads (keep acc 16-byte aligned), then acc[d]. */
export const PARTIAL_HEAD = 4;

@inline export function slot(desc: usize, i: i32): i32 {
  return load<i32>(desc + (<usize>i << 2));
}

/** Address of entry `i` (tasks first, then reduce entries). */
@inline export function entryAt(desc: usize, i: i32): usize {
  return desc + (<usize>(ENTRIES_AT + i * ENTRY) << 2);
}
