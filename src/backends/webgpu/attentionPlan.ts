/**
 * @module backends/webgpu/attentionPlan
 *
 * Plans a layer's paged attention on the host (kernels/attentionKernels.ts
 * runs it): from the step's sequence fields and global counts, which the
 * host wrote and the backend shadows, one work item per (sequence, KV head,
 * block of query rows, split of its key tiles), and one reduce record per
 * block. Blocks are split into equal ranges of tiles when there are too few
 * blocks to fill the GPU (decode at long context), to at least
 * `targetWorkgroups` items; each item writes `rows x group` partial rows.
 * Blocks of few query vectors (decode rows: qn x group <= smallQueries) go
 * to a second list, for the kernel shaped for them (no padding to 32
 * queries); both lists write one space of partial rows and one reduce.
 * A chunk longer than its window (not under full admission) reads its own
 * older keys by the step's admit flags, which the host copies into scratch.
 */
import { ADMIT_FULL, PAGE_SIZE, SEQ_ADMISSION, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import {
  IT_ADMIT, IT_FLAGS, IT_G, IT_NGLOBAL, IT_P, IT_PARTIAL, IT_QN, IT_QR0, IT_QUEST, IT_QUEST_COUNT, IT_ROW0, IT_T, IT_TABLE, IT_TILE0, IT_TILE1, IT_W, ITEM_WORDS,
  NO_ADMIT, REDUCE_WORDS, type AttentionShape,
} from "./kernels/attentionKernels.js";

export interface AttentionPlanInput {
  readonly seqs: Int32Array;
  readonly numSeqs: number;
  readonly numGlobal: Int32Array;
  readonly layer: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly rowStride: number;
  readonly maxWindow: number;
  /** Where Quest's copies sit in scratch (words), when the batch has a selection. */
  readonly quest: { readonly pagesWord: number; readonly countsWord: number; readonly stride: number } | null;
  readonly targetWorkgroups: number;
  /** Key tiles a split takes at least (default 2). */
  readonly minSplitTiles?: number;
  /** Query vectors of the small-block kernel (0: every block in `items`). */
  readonly smallQueries?: number;
  /**
   * Where the layer's step admit flags sit in scratch (byte of KV head 0's flag of batch row 0; head g's
   * rows follow at g * numRows), when the batch has them: chunks longer than their window read by them.
   */
  readonly admitted?: { readonly byteBase: number; readonly numRows: number } | null;
}

/**
 * Whether sequence s's chunk keys are seen by the step's admit flags: a chunk longer than its window
 * under an admission other than full (under full every flag is 1: causal alone is the rule).
 */
export function chunkByFlags(seqs: Int32Array, s: number): boolean {
  const f = s * SEQ_FIELDS;
  return seqs[f + SEQ_NUM_ROWS] > seqs[f + SEQ_WINDOW] && seqs[f + SEQ_ADMISSION] !== ADMIT_FULL;
}

export interface AttentionPlan {
  readonly items: Uint32Array;
  readonly numItems: number;
  /** Items of blocks of at most smallQueries query vectors. */
  readonly smallItems: Uint32Array;
  readonly numSmallItems: number;
  readonly reduce: Uint32Array;
  readonly numReduce: number;
  readonly numPartials: number;
}

/**
 * Arrays a caller reuses across plans (decode plans every layer of every
 * step): a plan made with them views them, valid until the next plan made
 * with the same scratch. Fresh arrays per plan (~32 KB a layer) were enough
 * garbage to bring on full collections, whose pauses grow with the heap's
 * page lists at long context.
 */
export class PlanScratch {
  readonly #arrays = { blocks: new Uint32Array(0), items: new Uint32Array(0), smallItems: new Uint32Array(0), reduce: new Uint32Array(0) };

  /** `length` zeroed elements of one of the arrays (grown when needed). */
  take(which: "blocks" | "items" | "smallItems" | "reduce", length: number): Uint32Array {
    if (this.#arrays[which].length < length) this.#arrays[which] = new Uint32Array(Math.max(length, 2 * this.#arrays[which].length));
    return this.#arrays[which].subarray(0, length).fill(0);
  }
}

/** The plan of one layer's attention; its arrays are views of `scratch` when one is given (fresh ones when not). */
export function planAttention(p: AttentionPlanInput, shape: AttentionShape, scratch: PlanScratch = new PlanScratch()): AttentionPlan {
  const { seqs, numSeqs, numGlobal, layer, numLayers: L, numKvHeads: H } = p;
  const { group: G, tileKeys: TK, numQueries } = shape;
  const rowsPerBlock = Math.max(1, Math.floor(numQueries / G));
  const smallQueries = p.smallQueries ?? 0;
  const minSplitTiles = p.minSplitTiles ?? 2;
  // NOTE: typed arrays and two passes without closures: decode plans every layer of every step (~500 items each)
  // ---- blocks (sequence, KV head, rows): [s, g, qr0, qn, tiles] each
  let numBlocks = 0;
  for (let s = 0; s < numSeqs; s++) {
    const f = s * SEQ_FIELDS;
    const T = seqs[f + SEQ_NUM_ROWS], W = seqs[f + SEQ_WINDOW];
    if (!(W > 0 && W % PAGE_SIZE === 0)) throw new RangeError(`paged attention: sequence ${s} has window ${W}, not a multiple of 16`);
    if (chunkByFlags(seqs, s) && !p.admitted) throw new RangeError(`paged attention: sequence ${s} has a chunk of ${T} queries, more than its window ${W}, and the batch has no admit flags`);
    numBlocks += H * Math.ceil(T / rowsPerBlock);
  }
  const blocks = scratch.take("blocks", numBlocks * 5);
  let b = 0;
  for (let s = 0; s < numSeqs; s++) {
    const f = s * SEQ_FIELDS;
    const T = seqs[f + SEQ_NUM_ROWS], P = seqs[f + SEQ_START_POS], W = seqs[f + SEQ_WINDOW];
    for (let g = 0; g < H; g++) {
      const nG = numGlobal[(s * L + layer) * H + g];
      if (!(nG >= 0)) throw new RangeError(`paged attention: sequence ${s}, KV head ${g} has ${nG} global tokens`);
      const fixed = Math.ceil(Math.min(P, W) / TK) + Math.ceil(nG / TK);
      for (let qr0 = 0; qr0 < T; qr0 += rowsPerBlock, b += 5) {
        const qn = Math.min(rowsPerBlock, T - qr0);
        blocks[b] = s;
        blocks[b + 1] = g;
        blocks[b + 2] = qr0;
        blocks[b + 3] = qn;
        blocks[b + 4] = fixed + Math.ceil((qr0 + qn) / TK);
      }
    }
  }
  const splitsWanted = Math.max(1, Math.ceil(p.targetWorkgroups / Math.max(1, numBlocks)));
  const splitsOf = (bi: number) => Math.max(1, Math.min(splitsWanted, Math.ceil(blocks[bi * 5 + 4] / minSplitTiles)));
  // NOTE: a chunk read by its flags keeps even its short blocks off the small-block (decode) kernels, which see chunk keys causally
  const isSmall = (bi: number) => blocks[bi * 5 + 3] * G <= smallQueries && !chunkByFlags(seqs, blocks[bi * 5]);
  let numItems = 0, numSmallItems = 0;
  for (let bi = 0; bi < numBlocks; bi++) {
    if (isSmall(bi)) numSmallItems += splitsOf(bi);
    else numItems += splitsOf(bi);
  }
  const items = scratch.take("items", numItems * ITEM_WORDS);
  const smallItems = scratch.take("smallItems", numSmallItems * ITEM_WORDS);
  const reduce = scratch.take("reduce", numBlocks * REDUCE_WORDS);
  let item = 0, smallItem = 0, partial = 0;
  for (let bi = 0; bi < numBlocks; bi++) {
    const s = blocks[bi * 5], g = blocks[bi * 5 + 1], qr0 = blocks[bi * 5 + 2], qn = blocks[bi * 5 + 3], tiles = blocks[bi * 5 + 4];
    const f = s * SEQ_FIELDS;
    const T = seqs[f + SEQ_NUM_ROWS], rowStart = seqs[f + SEQ_ROW_START];
    const head = (seqs[f + SEQ_SLOT] * L + layer) * H + g;
    const quest = p.quest !== null && seqs[f + SEQ_QUEST_BUDGET] > 0 && T === 1 ? p.quest : null;
    const splits = splitsOf(bi);
    const per = qn * G;
    const r = bi * REDUCE_WORDS;
    reduce[r] = partial;
    reduce[r + 1] = splits;
    reduce[r + 2] = per;
    reduce[r + 3] = rowStart + qr0;
    reduce[r + 4] = qn;
    reduce[r + 5] = g;
    const small = isSmall(bi);
    const list = small ? smallItems : items;
    const first = (small ? smallItem : item) * ITEM_WORDS;
    const admit = p.admitted && chunkByFlags(seqs, s) ? p.admitted.byteBase + g * p.admitted.numRows + rowStart : NO_ADMIT;
    // the block's fields once; each split copies them and sets its tiles and partials
    list[first + IT_ROW0] = rowStart;
    list[first + IT_T] = T;
    list[first + IT_P] = seqs[f + SEQ_START_POS];
    list[first + IT_W] = seqs[f + SEQ_WINDOW];
    list[first + IT_TABLE] = head * p.rowStride;
    list[first + IT_FLAGS] = head * p.maxWindow;
    list[first + IT_NGLOBAL] = numGlobal[(s * L + layer) * H + g];
    list[first + IT_QUEST] = quest ? quest.pagesWord + (s * H + g) * quest.stride : 0xffffffff;
    list[first + IT_QUEST_COUNT] = quest ? quest.countsWord + s * H + g : 0;
    list[first + IT_G] = g;
    list[first + IT_QR0] = qr0;
    list[first + IT_QN] = qn;
    for (let sp = 0; sp < splits; sp++) {
      const at = first + sp * ITEM_WORDS;
      if (sp > 0) list.copyWithin(at, first, first + IT_TILE0);
      list[at + IT_TILE0] = Math.floor((tiles * sp) / splits);
      list[at + IT_TILE1] = Math.floor((tiles * (sp + 1)) / splits);
      list[at + IT_PARTIAL] = partial;
      list[at + IT_ADMIT] = admit;
      partial += per;
    }
    if (small) smallItem += splits;
    else item += splits;
  }
  return { items, numItems, smallItems, numSmallItems, reduce, numReduce: numBlocks, numPartials: partial };
}
