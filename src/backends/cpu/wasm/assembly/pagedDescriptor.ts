// The descriptor of one batched paged-attention call, written by the host
// (src/backends/cpu/wasm/pagedAttentionPlan.ts mirrors these slots): i32
// slots (SCALE is f32; SAFE is 1 when the pages may hold infinities or NaN);
// the sequences' records at SEQS; then entries of ENTRY
// slots: the tasks [seq, g, h0, h1, r0, r1, b0, b1, partialRow (-1: final), 0],
// then the reduce entries [seq, h0, h1, r0, r1, firstPartialRow, numSplits, 0, 0, 0].

export const OUT = 0, Q = 1, K_FRESH = 2, V_FRESH = 3, K_PAGES = 4, V_PAGES = 5, SEQS = 6, HQ = 7, HKV = 8, D = 9;
export const SCALE = 10, DTYPE = 11, PARTIALS = 12, NUM_TASKS = 13, SAFE = 14;
export const ENTRIES_AT = 16, ENTRY = 10;
/** Floats per partial row: m, l, 2 pads (keep acc 16-byte aligned), then acc[d]. */
export const PARTIAL_HEAD = 4;

// A sequence's record (i32 slots): its rows of q/out/kFresh/vFresh start at
// ROW0; T queries at positions QPOS0.. (QPOS0 tokens are cached); window W;
// KV head g's ring pages at RING_TABLE + g * RING_STRIDE entries, its global
// pages at GLOBAL_TABLE + g * GLOBAL_STRIDE, its global token count at
// NUM_GLOBAL[g], its ring admit flags (u8) at RING_ADM + g * ADM_STRIDE,
// the chunk's own admit flags (u8, from its first row) at FRESH_ADM +
// g * FRESH_STRIDE, FRESH_ADM 0 when the chunk's keys are all visible causally.
export const S_ROW0 = 0, S_T = 1, S_QPOS0 = 2, S_W = 3, S_RING_TABLE = 4, S_RING_STRIDE = 5, S_GLOBAL_TABLE = 6;
export const S_GLOBAL_STRIDE = 7, S_NUM_GLOBAL = 8, S_RING_ADM = 9, S_ADM_STRIDE = 10, S_FRESH_ADM = 11, S_FRESH_STRIDE = 12, SEQ_REC = 14;

@inline export function slot(desc: usize, i: i32): i32 {
  return load<i32>(desc + (<usize>i << 2));
}

/** Field `i` of sequence `s`'s record. */
@inline export function seqField(desc: usize, s: i32, i: i32): i32 {
  return load<i32>(<usize>slot(desc, SEQS) + (<usize>(s * SEQ_REC + i) << 2));
}

/** Address of entry `i` (tasks first, then reduce entries). */
@inline export function entryAt(desc: usize, i: i32): usize {
  return desc + (<usize>(ENTRIES_AT + i * ENTRY) << 2);
}
