// Paged attention of WG-KV's dual cache (the contract and the literal
// reference are in src/backends/cpu/pagedAttention.ts). Query r (position
// qPos0 + r) of head h, KV head g = h / group, attends to the ring offsets of
// g it may see (DESIGN.md §3), all of g's global tokens, and the chunk's own
// keys j <= r, with an online softmax.
//
// The host (src/backends/cpu/wasm/pagedAttentionPlan.ts) writes a descriptor
// (pagedDescriptor.ts) with a task table; one call runs one task
// (KV head g, query heads [h0, h1), queries [r0, r1), key blocks [b0, b1)),
// where g's 16-key blocks are its ring pages, then its global pages, then the
// chunk's keys. Up to BLOCK_PAGES consecutive pages of one kind form a key
// block that every row of the task consumes while it is in L1
// (pagedAttend.ts). A task covering all of g's blocks writes `out`; a split-K
// task writes its rows' partial (m, l, acc) for pagedReduce.ts.
import { attendBlock, BLOCK_KEYS } from "./pagedAttend";
import { BLOCK_PAGES, decodeRows, freshMasks, fullMasks, gatherRows, KV_F32, PAGE, ringMasks } from "./pagedBlock";
import {
  D, DTYPE, entryAt, HKV, HQ, K_FRESH, K_PAGES, NUM_GLOBAL, NUM_RING, OUT, PARTIAL_HEAD, PARTIALS, Q, QPOS0, RING_ADM,
  RING_POS, ROW_STRIDE, SCALE, slot, T, TABLES, V_FRESH, V_PAGES, W,
} from "./pagedDescriptor";
import { scaleRow } from "./pagedReduce";

/** Scratch bytes a task of `rows` (query, head) rows and head dim d needs (the layout below). */
export function pagedAttentionScratchBytes(rows: i32, d: i32): i32 {
  return (2 * BLOCK_KEYS + 2 * rows + 3 * rows + 2 * (rows + 1) + 4 * BLOCK_PAGES + rows * d + 2 * BLOCK_PAGES * PAGE * d + 8) << 2;
}

export function pagedAttentionTask(desc: usize, task: i32, scratch: usize): void {
  const e = entryAt(desc, task);
  const g = load<i32>(e), h0 = load<i32>(e, 4), h1 = load<i32>(e, 8), r0 = load<i32>(e, 12), r1 = load<i32>(e, 16);
  const b0 = load<i32>(e, 20), b1 = load<i32>(e, 24), partialRow = load<i32>(e, 28);
  const d = slot(desc, D), numHeads = slot(desc, HQ), numKvHeads = slot(desc, HKV), window = slot(desc, W), dtype = slot(desc, DTYPE);
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
    store<u32>(rowQ + (<usize>i << 2), <u32>(q + <usize>((r0 + qi) * numHeads + h0 + i % nh) * rowBytes));
    store<f32>(states + (<usize>i << 3), -Infinity);
    store<f32>(states + (<usize>i << 3), 0, 4);
  }
  memory.fill(accs, 0, <usize>rows * rowBytes);

  const numRing = load<i32>(<usize>slot(desc, NUM_RING) + (<usize>g << 2));
  const numGlobal = load<i32>(<usize>slot(desc, NUM_GLOBAL) + (<usize>g << 2));
  const ringBlocks = (numRing + PAGE - 1) / PAGE, globalEnd = ringBlocks + (numGlobal + PAGE - 1) / PAGE;
  const table = <usize>slot(desc, TABLES) + (<usize>(g * slot(desc, ROW_STRIDE)) << 2);
  const globalTable = table + (<usize>(window / PAGE - ringBlocks) << 2); // indexed by block number
  const pageBytes = <usize>PAGE * d * (dtype == KV_F32 ? 4 : 2);
  const kPages = <usize>slot(desc, K_PAGES), vPages = <usize>slot(desc, V_PAGES);
  const ringPos = <usize>slot(desc, RING_POS) + (<usize>(g * window) << 2), ringAdm = <usize>slot(desc, RING_ADM) + <usize>(g * window);
  const kFresh = <usize>slot(desc, K_FRESH), vFresh = <usize>slot(desc, V_FRESH), freshStride = <usize>numKvHeads * rowBytes;
  const numQueries = slot(desc, T), pos0 = slot(desc, QPOS0) + r0;

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
        seen = ringMasks(masks, ringPos + (<usize>o0 << 2), ringAdm + <usize>o0, n, pos0, nq, window, shift);
        page = load<i32>(table + (<usize>blk << 2));
      } else if (blk < globalEnd) {
        n = min(PAGE, numGlobal - (blk - ringBlocks) * PAGE);
        seen = fullMasks(masks, n, nq, shift);
        page = load<i32>(globalTable + (<usize>blk << 2));
      } else {
        // the chunk's own keys: f32 [T, Hkv, d], gathered into a dense page unless Hkv = 1
        const j0 = (blk - globalEnd) * PAGE;
        n = min(PAGE, numQueries - j0);
        seen = freshMasks(masks, j0, n, r0, nq, shift);
        const at = <usize>(j0 * numKvHeads + g) * rowBytes;
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
    if (any != 0) attendBlock(kPtrs, vPtrs, numPages, d, scale, rows, masks, rowQuery, rowQ, states, accs, sa, sb);
    b = bEnd;
  }

  if (partialRow < 0) {
    const out = <usize>slot(desc, OUT);
    for (let i = 0; i < rows; i++) {
      const dst = out + <usize>((r0 + i / nh) * numHeads + h0 + i % nh) * rowBytes;
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
