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
 */
import { PAGE_SIZE, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import {
  IT_FLAGS, IT_G, IT_NGLOBAL, IT_P, IT_PARTIAL, IT_QN, IT_QR0, IT_QUEST, IT_QUEST_COUNT, IT_ROW0, IT_T, IT_TABLE, IT_TILE0, IT_TILE1, IT_W, ITEM_WORDS,
  REDUCE_WORDS, type AttentionShape,
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

export function planAttention(p: AttentionPlanInput, shape: AttentionShape): AttentionPlan {
  const { seqs, numSeqs, numGlobal, layer, numLayers: L, numKvHeads: H } = p;
  const { group: G, tileKeys: TK, numQueries } = shape;
  const rowsPerBlock = Math.max(1, Math.floor(numQueries / G));
  interface Block { s: number; g: number; qr0: number; qn: number; tiles: number }
  const blocks: Block[] = [];
  for (let s = 0; s < numSeqs; s++) {
    const f = s * SEQ_FIELDS;
    const T = seqs[f + SEQ_NUM_ROWS], P = seqs[f + SEQ_START_POS], W = seqs[f + SEQ_WINDOW];
    if (!(W > 0 && W % PAGE_SIZE === 0)) throw new RangeError(`paged attention: sequence ${s} has window ${W}, not a multiple of 16`);
    if (T > W) throw new RangeError(`paged attention: sequence ${s} has a chunk of ${T} queries, more than its window ${W}`);
    for (let g = 0; g < H; g++) {
      const nG = numGlobal[(s * L + layer) * H + g];
      if (!(nG >= 0)) throw new RangeError(`paged attention: sequence ${s}, KV head ${g} has ${nG} global tokens`);
      const fixed = Math.ceil(Math.min(P, W) / TK) + Math.ceil(nG / TK);
      for (let qr0 = 0; qr0 < T; qr0 += rowsPerBlock) {
        const qn = Math.min(rowsPerBlock, T - qr0);
        blocks.push({ s, g, qr0, qn, tiles: fixed + Math.ceil((qr0 + qn) / TK) });
      }
    }
  }
  const splitsWanted = Math.max(1, Math.ceil(p.targetWorkgroups / Math.max(1, blocks.length)));
  let numItems = 0, numSmallItems = 0;
  const small = (b: Block) => b.qn * G <= (p.smallQueries ?? 0);
  const splitsOf = blocks.map((b) => Math.max(1, Math.min(splitsWanted, Math.ceil(b.tiles / (p.minSplitTiles ?? 2)))));
  blocks.forEach((b, bi) => (small(b) ? (numSmallItems += splitsOf[bi]) : (numItems += splitsOf[bi])));
  const items = new Uint32Array(numItems * ITEM_WORDS);
  const smallItems = new Uint32Array(numSmallItems * ITEM_WORDS);
  const reduce = new Uint32Array(blocks.length * REDUCE_WORDS);
  let item = 0, smallItem = 0, partial = 0;
  blocks.forEach((b, bi) => {
    const f = b.s * SEQ_FIELDS;
    const T = seqs[f + SEQ_NUM_ROWS], P = seqs[f + SEQ_START_POS], W = seqs[f + SEQ_WINDOW], slot = seqs[f + SEQ_SLOT];
    const head = (slot * L + layer) * H + b.g;
    const quest = p.quest && seqs[f + SEQ_QUEST_BUDGET] > 0 && T === 1;
    const splits = splitsOf[bi];
    const per = b.qn * G;
    reduce.set([partial, splits, per, seqs[f + SEQ_ROW_START] + b.qr0, b.qn, b.g], bi * REDUCE_WORDS);
    const isSmall = small(b);
    const list = isSmall ? smallItems : items;
    for (let sp = 0; sp < splits; sp++) {
      const at = (isSmall ? smallItem++ : item++) * ITEM_WORDS;
      list[at + IT_ROW0] = seqs[f + SEQ_ROW_START];
      list[at + IT_T] = T;
      list[at + IT_P] = P;
      list[at + IT_W] = W;
      list[at + IT_TABLE] = head * p.rowStride;
      list[at + IT_FLAGS] = head * p.maxWindow;
      list[at + IT_NGLOBAL] = numGlobal[(b.s * L + layer) * H + b.g];
      list[at + IT_QUEST] = quest ? p.quest!.pagesWord + (b.s * H + b.g) * p.quest!.stride : 0xffffffff;
      list[at + IT_QUEST_COUNT] = quest ? p.quest!.countsWord + b.s * H + b.g : 0;
      list[at + IT_G] = b.g;
      list[at + IT_QR0] = b.qr0;
      list[at + IT_QN] = b.qn;
      list[at + IT_TILE0] = Math.floor((b.tiles * sp) / splits);
      list[at + IT_TILE1] = Math.floor((b.tiles * (sp + 1)) / splits);
      list[at + IT_PARTIAL] = partial;
      partial += per;
    }
  });
  return { items, numItems, smallItems, numSmallItems, reduce, numReduce: blocks.length, numPartials: partial };
}
