// Paged attention of WG-KV's dual cache for a batch of sequences (the
// contract and the literal reference are in src/backends/cpu/pagedAttention.ts).
// Query r (position qPos0 + r) of a sequence's head h, KV head g = h / group,
// attends to the ring offsets of g it may see (docs/design.md §3), all of g's
// global tokens, and the chunk's own keys j <= r, with an online softmax.
//
// The host (src/backends/cpu/wasm/pagedAttentionPlan.ts) writes a descriptor
// (pagedDescriptor.ts) with a task table; one call runs one task (sequence s,
// KV head g, query heads [h0, h1), queries [r0, r1), key blocks [b0, b1)),
// where g's 16-key blocks are its ring pages, then its global pages, then the
// chunk's keys. Up to BLOCK_PAGES consecutive pages of one kind form a key
// block that every row of the task consumes while it is in L1
// (pagedAttend.ts). A task covering all of g's blocks writes `out`; a split-K
// task writes its rows' partial (m, l, acc) for pagedReduce.ts.
import { attendBlock, BLOCK_KEYS } from "./pagedAttend";
import { BLOCK_PAGES, decodeRows, freshMasks, fullMasks, gatherRows, KV_F32, PAGE, ringMasks } from "./pagedBlock";
import {
  D, DTYPE, entryAt, SAFE, HKV, HQ, K_FRESH, K_PAGES, OUT, PARTIAL_HEAD, PARTIALS, Q, S_ADM_STRIDE, S_FRESH_ADM, S_FRESH_STRIDE, S_GLOBAL_STRIDE, S_GLOBAL_TABLE,
  S_NUM_GLOBAL, S_QPOS0, S_RING_ADM, S_RING_STRIDE, S_RING_TABLE, S_ROW0, S_T, S_W, SCALE, seqField, slot, V_FRESH, V_PAGES,
} from "./pagedDescriptor";
import { scaleRow } from "./pagedReduce";

/** Scratch bytes a task of `rows` (query, head) rows and head dim d needs (the layout below). */
export function pagedAttentionScratchBytes(rows: i32, d: i32): i32 {
  return (2 * BLOCK_KEYS + 2 * rows + 3 * rows + 2 * (rows + 1) + 4 * BLOCK_PAGES + rows * d + 2 * BLOCK_PAGES * PAGE * d + 8) << 2;
}

export function pagedAttentionTask(desc: usize, task: i32, scratch: usize): void {
  const e = entryAt(desc, task);
  const seq = load<i32>(e), g = load<i32>(e, 4), h0 = load<i32>(e, 8), h1 = load<i32>(e, 12), r0 = load<i32>(e, 16), r1 = load<i32>(e, 20);
  const b0 = load<i32>(e, 24), b1 = load<i32>(e, 28), partialRow = load<i32>(e, 32);
  const d = slot(desc, D), numHeads = slot(desc, HQ), numKvHeads = slot(desc, HKV), dtype = slot(desc, DTYPE);
  const window = seqField(desc, seq, S_W), row0 = seqField(desc, seq, S_ROW0), numCached = seqField(desc, seq, S_QPOS0);
  const scale = load<f32>(desc + (<usize>SCALE << 2));
  const rowBytes = <usize>d << 2;
  const nh = h1 - h0, nq = r1 - r0, rows = nq * nh; // row i: query r0 + i / nh, head h0 + i % nh

  // scratch layout (pagedAttentionScratchBytes)
  const sa = scratch, sb = sa + (<usize>BLOCK_KEYS << 2); // f32 [2, BLOCK_KEYS]: scores of a row pair
  const masks = sb + (<usize>BLOCK_KEYS << 2);             // u64 [nq]: visible keys of the block per query
  const rowQuery = masks + (<usize>nq << 3);               // i32 [rows]: query index in the task
  const rowQ = rowQuery + (<usize>rows << 2);              // u32 [rows]: q row pointer
  const kPtrs = rowQ + (<usize>rows << 2);                 // u32 [BLOCK_PAGES]: dense f32 K rows of each page
  const vPtrs = kPtrs + (<usize>BLOCK_PAGES << 2);         // u32 [BLOCK_PAGES]
  const states = (vPtrs + (<usize>BLOCK_PAGES << 2) + 15) & ~15; // f32 [rows, 2]: (m, l)
  const accs = states + (<usize>((rows + 1) & ~1) << 3);  // f32 [rows, d], 16-byte aligned
  const kBuf = accs + <usize>rows * rowBytes;              // f32 [BLOCK_PAGES, PAGE, d]: decoded / gathered keys
  const vBuf = kBuf + <usize>(BLOCK_PAGES * PAGE) * rowBytes;
  const q = <usize>slot(desc, Q);
  for (let i = 0; i < rows; i++) {
    const qi = i / nh;
    store<i32>(rowQuery + (<usize>i << 2), qi);
    store<u32>(rowQ + (<usize>i << 2), <u32>(q + <usize>((row0 + r0 + qi) * numHeads + h0 + i % nh) * rowBytes));
    store<f32>(states + (<usize>i << 3), -Infinity);
    store<f32>(states + (<usize>i << 3), 0, 4);
  }
  memory.fill(accs, 0, <usize>rows * rowBytes);

  const numRing = min(numCached, window);
  const numGlobal = load<i32>(<usize>seqField(desc, seq, S_NUM_GLOBAL) + (<usize>g << 2));
  const ringBlocks = (numRing + PAGE - 1) / PAGE, globalEnd = ringBlocks + (numGlobal + PAGE - 1) / PAGE;
  const ringTable = <usize>seqField(desc, seq, S_RING_TABLE) + (<usize>(g * seqField(desc, seq, S_RING_STRIDE)) << 2);
  // indexed by block number: global block b is entry b - ringBlocks
  const globalTable = <usize>seqField(desc, seq, S_GLOBAL_TABLE) + (<usize>(g * seqField(desc, seq, S_GLOBAL_STRIDE)) << 2) - (<usize>ringBlocks << 2);
  const pageBytes = <usize>PAGE * d * (dtype == KV_F32 ? 4 : 2);
  const kPages = <usize>slot(desc, K_PAGES), vPages = <usize>slot(desc, V_PAGES);
  const ringAdm = <usize>seqField(desc, seq, S_RING_ADM) + <usize>(g * seqField(desc, seq, S_ADM_STRIDE));
  const kFresh = <usize>slot(desc, K_FRESH), vFresh = <usize>slot(desc, V_FRESH), freshStride = <usize>numKvHeads * rowBytes;
  const numQueries = seqField(desc, seq, S_T), pos0 = numCached + r0;
  const freshAdm0 = <usize>seqField(desc, seq, S_FRESH_ADM);
  const freshAdm = freshAdm0 != 0 ? freshAdm0 + <usize>(g * seqField(desc, seq, S_FRESH_STRIDE)) : 0;

  for (let b = b0; b < b1; ) {
    // a block: up to BLOCK_PAGES consecutive pages of one kind
    const kindEnd = b < ringBlocks ? ringBlocks : b < globalEnd ? globalEnd : b1;
    const bEnd = min(b + BLOCK_PAGES, min(kindEnd, b1));
    const numPages = bEnd - b;
    for (let qi = 0; qi < nq; qi++) store<u64>(masks + (<usize>qi << 3), 0);
    let any: u32 = 0;
    for (let k = 0; k < numPages; k++) {
      const blk = b + k, shift = k * PAGE;
      const kDense = kBuf + <usize>(k * PAGE) * rowBytes, vDense = vBuf + <usize>(k * PAGE) * rowBytes;
      let n: i32, page: i32 = -1, seen: u32;
      if (blk < ringBlocks) {
        const o0 = blk * PAGE;
        n = min(PAGE, numRing - o0);
        seen = ringMasks(masks, o0, ringAdm + <usize>o0, n, numCached, pos0, nq, window, shift);
        page = load<i32>(ringTable + (<usize>blk << 2));
      } else if (blk < globalEnd) {
        n = min(PAGE, numGlobal - (blk - ringBlocks) * PAGE);
        seen = fullMasks(masks, n, nq, shift);
        page = load<i32>(globalTable + (<usize>blk << 2));
      } else {
        // the chunk's own keys: f32 [T, Hkv, d], gathered into a dense page unless Hkv = 1
        const j0 = (blk - globalEnd) * PAGE;
        n = min(PAGE, numQueries - j0);
        seen = freshMasks(masks, j0, n, r0, nq, shift, freshAdm != 0 ? freshAdm + <usize>j0 : 0, window);
        const at = <usize>((row0 + j0) * numKvHeads + g) * rowBytes;
        if (numKvHeads == 1) {
          store<u32>(kPtrs + (<usize>k << 2), <u32>(kFresh + at));
          store<u32>(vPtrs + (<usize>k << 2), <u32>(vFresh + at));
        } else if (seen != 0) {
          gatherRows(kDense, kFresh + at, freshStride, n, d);
          gatherRows(vDense, vFresh + at, freshStride, n, d);
          store<u32>(kPtrs + (<usize>k << 2), <u32>kDense);
          store<u32>(vPtrs + (<usize>k << 2), <u32>vDense);
        }
      }
      any |= seen;
      if (page < 0 || seen == 0) continue;
      const kp = kPages + <usize>page * pageBytes, vp = vPages + <usize>page * pageBytes;
      if (dtype == KV_F32) {
        store<u32>(kPtrs + (<usize>k << 2), <u32>kp);
        store<u32>(vPtrs + (<usize>k << 2), <u32>vp);
      } else {
        decodeRows(kDense, kp, n * d, dtype);
        decodeRows(vDense, vp, n * d, dtype);
        store<u32>(kPtrs + (<usize>k << 2), <u32>kDense);
        store<u32>(vPtrs + (<usize>k << 2), <u32>vDense);
      }
    }
    // NOTE: touching the next block's cache lines ahead of use (pages sit at
    // scattered addresses) measured 10% slower in decode: in-order retirement
    // stalls on those loads, while the hardware prefetcher streams within a page.
    if (any != 0) attendBlock(kPtrs, vPtrs, numPages, d, scale, rows, masks, rowQuery, rowQ, states, accs, sa, sb, slot(desc, SAFE) != 0);
    b = bEnd;
  }

  if (partialRow < 0) {
    const out = <usize>slot(desc, OUT);
    for (let i = 0; i < rows; i++) {
      const dst = out + <usize>((row0 + r0 + i / nh) * numHeads + h0 + i % nh) * rowBytes;
      scaleRow(dst, accs + <usize>i * rowBytes, 1 / load<f32>(states + (<usize>i << 3), 4), d);
    }
  } else {
    // partial rows [m, l, 0, 0, acc[d]]
    const stride = <usize>(d + PARTIAL_HEAD) << 2;
    let dst = <usize>slot(desc, PARTIALS) + <usize>partialRow * stride;
    for (let i = 0; i < rows; i++, dst += stride) {
      v128.store(dst, v128.load64_zero(states + (<usize>i << 3)));
      memory.copy(dst + (<usize>PARTIAL_HEAD << 2), accs + <usize>i * rowBytes, rowBytes);
    }
  }
}
