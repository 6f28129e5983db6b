/**
 * @module backends/cpu/wasm/pagedAttentionPlan
 *
 * How a batched paged-attention call (pagedAttention.ts's contract) is cut
 * into tasks for assembly/pagedAttention.ts, written as a descriptor in
 * kernel memory.
 *
 * Base tasks are (sequence) × (block of its queries) × (KV head) × (chunk of
 * its query heads): a task's rows share every K/V block while it is in L1. A
 * base task reads all of its KV head's key blocks (ring pages, global pages,
 * the chunk's keys up to its last query), so its cost is rows × blocks, never
 * N². When base tasks are few (decode: one per sequence and KV head) and of
 * very different lengths (ragged heads, sequences of different contexts),
 * they are split along their blocks into chunks of about equal cost (split-K,
 * docs/design.md §6) across all sequences of the batch; each split writes partial
 * (m, l, acc) rows and a reduce entry combines them.
 *
 * Descriptor (i32 slots; SCALE is f32), mirrored in assembly/pagedDescriptor.ts:
 *   0..14  out q kFresh vFresh kPages vPages seqs Hq Hkv d scale kvDType partials numTasks safe
 *          kvDType: 0 f32, 1 f16, 2 bf16, 3 f16 without inf/NaN; partials: f32 [partialRows, d + 4] (m, l, pad, pad, acc[d]);
 *          safe: 1 when the pages may hold inf/NaN (hidden keys then add exactly nothing)
 *   16..   entries of 10 slots: numTasks tasks [seq, g, h0, h1, r0, r1, b0, b1, partialRow (-1: final), 0],
 *          then reduce entries [seq, h0, h1, r0, r1, firstPartialRow, numSplits, 0, 0, 0]
 */
import type { PagedAttentionParams, PagedAttentionPointers, PagedSeq } from "../pagedAttention.js";
import { PAGE_SIZE } from "../pagedAttention.js";
import { KV_DTYPE_CODE, KV_F16_FINITE_CODE } from "./controlBlock.js";

export const ENTRIES_AT = 16;
export const ENTRY = 10;
/** Floats per partial row: m, l, two pads, acc[d]. */
export const PARTIAL_HEAD = 4;
const SLOT_SCALE = 10;

/** Splits per thread when a call is split along keys: a few, so that a descheduled thread hands work over. */
const SPLITS_PER_THREAD = 4;
/** Fewest key blocks (pages) a split holds: below, the partial rows and the reduce cost more than they save. */
const MIN_SPLIT_BLOCKS = 4;

export interface PagedPlan {
  /** The entries from slot ENTRIES_AT on: tasks, then reduce entries. */
  readonly entries: Int32Array;
  readonly numTasks: number;
  readonly numReduce: number;
  readonly partialRows: number;
  /** Per task, its cost (rows × key blocks), in task order: the host runs tasks in groups of about equal time. */
  readonly taskCosts: Float64Array;
  /** Multiply-adds of the call (~2 per key and row element), to decide whether waking threads pays. */
  readonly macs: number;
}

interface Task {
  readonly seq: number; readonly g: number; readonly h0: number; readonly h1: number; readonly r0: number; readonly r1: number;
  readonly b0: number; readonly b1: number; readonly partialRow: number; readonly cost: number;
}

/**
 * Plans a call. numGlobal(s, g): the global tokens sequence s's KV head g
 * reads; maxRows: the most (query, head) rows a task may hold (the thread
 * scratch bounds it).
 */
export function planPagedAttention(
  p: PagedAttentionParams, seqs: readonly PagedSeq[], numGlobal: (s: number, g: number) => number, numThreads: number, maxRows: number,
): PagedPlan {
  const { numHeads, numKvHeads } = p;
  const group = numHeads / numKvHeads;
  const headsPerTask = Math.min(group, maxRows);
  const headChunks = Math.ceil(group / headsPerTask);
  const totalQueries = seqs.reduce((n, s) => n + s.numQueries, 0);
  const fairQueries = Math.floor((totalQueries * numKvHeads * headChunks) / (4 * numThreads));
  const queriesPerTask = Math.max(1, Math.min(Math.floor(maxRows / headsPerTask), fairQueries));

  const base: Task[] = [];
  let total = 0;
  seqs.forEach((s, seq) => {
    const numRing = Math.min(s.numCached, s.window);
    for (let r0 = 0; r0 < s.numQueries; r0 += queriesPerTask) {
      const r1 = Math.min(s.numQueries, r0 + queriesPerTask);
      const freshBlocks = Math.ceil(r1 / PAGE_SIZE);
      for (let g = 0; g < numKvHeads; g++) {
        const blocks = Math.ceil(numRing / PAGE_SIZE) + Math.ceil(numGlobal(seq, g) / PAGE_SIZE) + freshBlocks;
        for (let c = 0; c < headChunks; c++) {
          const h0 = g * group + c * headsPerTask, h1 = Math.min(h0 + headsPerTask, (g + 1) * group);
          const cost = (r1 - r0) * (h1 - h0) * blocks;
          base.push({ seq, g, h0, h1, r0, r1, b0: 0, b1: blocks, partialRow: -1, cost });
          total += cost;
        }
      }
    }
  });

  const tasks: Task[] = [];
  const reduce: number[] = [];
  let partialRows = 0;
  const target = total / (numThreads * SPLITS_PER_THREAD);
  for (const t of base) {
    const splits = numThreads === 1 ? 1 : Math.max(1, Math.min(Math.ceil(t.cost / target), Math.floor(t.b1 / MIN_SPLIT_BLOCKS)));
    if (splits === 1) {
      tasks.push(t);
      continue;
    }
    const rows = (t.r1 - t.r0) * (t.h1 - t.h0);
    for (let s = 0; s < splits; s++) {
      const b0 = Math.floor((t.b1 * s) / splits), b1 = Math.floor((t.b1 * (s + 1)) / splits);
      tasks.push({ ...t, b0, b1, partialRow: partialRows + s * rows, cost: rows * (b1 - b0) });
    }
    reduce.push(t.seq, t.h0, t.h1, t.r0, t.r1, partialRows, splits, 0, 0, 0);
    partialRows += splits * rows;
  }
  // costliest first: threads claim tasks in order, so the long ones do not come last
  tasks.sort((a, b) => b.cost - a.cost);

  const entries = new Int32Array(ENTRY * tasks.length + reduce.length);
  const taskCosts = new Float64Array(tasks.length);
  tasks.forEach((t, i) => {
    entries.set([t.seq, t.g, t.h0, t.h1, t.r0, t.r1, t.b0, t.b1, t.partialRow, 0], i * ENTRY);
    taskCosts[i] = t.cost;
  });
  entries.set(reduce, ENTRY * tasks.length);
  return { entries, numTasks: tasks.length, numReduce: reduce.length / ENTRY, partialRows, taskCosts, macs: total * PAGE_SIZE * p.headDim * 2 };
}

/** Bytes of the descriptor of a plan. */
export function descriptorBytes(plan: PagedPlan): number {
  return (ENTRIES_AT + plan.entries.length) * 4;
}

/** Writes the descriptor at `desc` (partials: the partial rows' area, or 0 when the plan has none). */
export function writeDescriptor(buffer: ArrayBufferLike, desc: number, ptrs: PagedAttentionPointers, p: PagedAttentionParams, plan: PagedPlan, partials: number): void {
  const slots = new Int32Array(buffer, desc, ENTRIES_AT + plan.entries.length);
  slots.set([
    ptrs.out, ptrs.q, ptrs.kFresh, ptrs.vFresh, ptrs.kPages, ptrs.vPages, ptrs.seqs, p.numHeads, p.numKvHeads, p.headDim, 0,
    p.kvDType === "f16" && p.pagesFinite ? KV_F16_FINITE_CODE : KV_DTYPE_CODE[p.kvDType], partials, plan.numTasks, p.pagesFinite ? 0 : 1, 0,
  ]);
  new Float32Array(buffer, desc, ENTRIES_AT)[SLOT_SCALE] = p.scale;
  slots.set(plan.entries, ENTRIES_AT);
}
