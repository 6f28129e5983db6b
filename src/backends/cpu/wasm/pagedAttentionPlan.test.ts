/**
 * The batched paged-attention planner (pagedAttentionPlan.ts): the tasks of
 * a call cover every (sequence, query, query head, key block) exactly once
 * (a base task, or splits along keys that tile its blocks and a reduce entry
 * that combines them); splits happen only where they pay (several threads,
 * few long tasks: decode, ragged heads) and hold enough blocks each; tasks
 * come costliest first with their costs reported; partial rows of different
 * reduce entries never overlap.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TestRandom } from "../../conformance/testData.js";
import type { PagedAttentionParams, PagedSeq } from "../pagedAttention.js";
import { ENTRY, planPagedAttention, type PagedPlan } from "./pagedAttentionPlan.js";

/** Fewest blocks a split may hold (pagedAttentionPlan.ts's MIN_SPLIT_BLOCKS). */
const MIN_SPLIT_BLOCKS = 4;

const params = (numSeqs: number, numHeads = 6, numKvHeads = 2): PagedAttentionParams => ({
  numSeqs, numHeads, numKvHeads, headDim: 64, scale: 0.125, kvDType: "f32",
});

/** A sequence as the planner reads it: T queries after `cached` tokens, window W (tables irrelevant here). */
const seq = (numQueries: number, numCached: number, window = 256): PagedSeq => ({
  row0: 0, numQueries, numCached, window, ringTable: 0, ringStride: 0, globalTable: 0, globalStride: 0, numGlobal: 0, ringAdm: 0, admStride: 0, freshAdm: 0, freshStride: 0,
});

interface Task { seq: number; g: number; h0: number; h1: number; r0: number; r1: number; b0: number; b1: number; partialRow: number }
interface Reduce { seq: number; h0: number; h1: number; r0: number; r1: number; first: number; numSplits: number }

function decode(plan: PagedPlan): { tasks: Task[]; reduce: Reduce[] } {
  const tasks: Task[] = [], reduce: Reduce[] = [];
  for (let i = 0; i < plan.numTasks + plan.numReduce; i++) {
    const e = Array.from(plan.entries.subarray(i * ENTRY, (i + 1) * ENTRY));
    if (i < plan.numTasks) {
      const [seqIndex, g, h0, h1, r0, r1, b0, b1, partialRow, pad] = e;
      assert.equal(pad, 0);
      tasks.push({ seq: seqIndex, g, h0, h1, r0, r1, b0, b1, partialRow });
    } else {
      const [seqIndex, h0, h1, r0, r1, first, numSplits, ...pads] = e;
      assert.deepEqual(pads, [0, 0, 0]);
      reduce.push({ seq: seqIndex, h0, h1, r0, r1, first, numSplits });
    }
  }
  assert.equal(plan.entries.length, (plan.numTasks + plan.numReduce) * ENTRY);
  return { tasks, reduce };
}

/** Key blocks of KV head g of sequence s for queries up to r1: ring, global, then the chunk's own keys. */
function numBlocks(s: PagedSeq, numGlobal: number, r1: number): number {
  return Math.ceil(Math.min(s.numCached, s.window) / 16) + Math.ceil(numGlobal / 16) + Math.ceil(r1 / 16);
}

/** Checks every property of a plan; returns it decoded. */
function checkPlan(plan: PagedPlan, p: PagedAttentionParams, seqs: readonly PagedSeq[], numGlobal: (s: number, g: number) => number, numThreads: number) {
  const { tasks, reduce } = decode(plan);
  const group = p.numHeads / p.numKvHeads;
  const cost = (t: Task) => (t.r1 - t.r0) * (t.h1 - t.h0) * (t.b1 - t.b0);
  // (sequence, query, head) -> the block ranges of the tasks covering it
  const cover = new Map<string, { b0: number; b1: number; task: Task }[]>();
  for (const t of tasks) {
    const s = seqs[t.seq];
    assert.ok(s && t.g >= 0 && t.g < p.numKvHeads, `task ${JSON.stringify(t)}: bad sequence or KV head`);
    assert.ok(t.h0 >= t.g * group && t.h0 < t.h1 && t.h1 <= (t.g + 1) * group, `task ${JSON.stringify(t)}: heads outside its group`);
    assert.ok(t.r0 >= 0 && t.r0 < t.r1 && t.r1 <= s.numQueries, `task ${JSON.stringify(t)}: queries outside its sequence`);
    const blocks = numBlocks(s, numGlobal(t.seq, t.g), t.r1);
    assert.ok(t.b0 >= 0 && t.b0 < t.b1 && t.b1 <= blocks, `task ${JSON.stringify(t)}: blocks outside [0, ${blocks})`);
    for (let r = t.r0; r < t.r1; r++) {
      for (let h = t.h0; h < t.h1; h++) {
        const key = `${t.seq},${r},${h}`;
        cover.set(key, [...(cover.get(key) ?? []), { b0: t.b0, b1: t.b1, task: t }]);
      }
    }
  }
  assert.equal(cover.size, seqs.reduce((n, s) => n + s.numQueries * p.numHeads, 0), "every (sequence, query, head) is covered");
  for (const [key, list] of cover) {
    list.sort((a, b) => a.b0 - b.b0);
    const first = list[0].task;
    assert.ok(list.every((c) => c.task.r0 === first.r0 && c.task.r1 === first.r1 && c.task.h0 === first.h0 && c.task.h1 === first.h1), `${key}: covered by tasks of different rows`);
    const blocks = numBlocks(seqs[first.seq], numGlobal(first.seq, first.g), first.r1);
    assert.equal(list[0].b0, 0, `${key}: blocks from 0`);
    for (let i = 1; i < list.length; i++) assert.equal(list[i].b0, list[i - 1].b1, `${key}: the splits tile the blocks, once each`);
    assert.equal(list[list.length - 1].b1, blocks, `${key}: up to the last block`);
    if (list.length === 1) {
      assert.equal(first.partialRow, -1, `${key}: a lone task writes out`);
      continue;
    }
    // split: one reduce entry of these rows, split s at partial rows first + s * rows
    const red = reduce.filter((e) => e.seq === first.seq && e.h0 === first.h0 && e.r0 === first.r0);
    assert.equal(red.length, 1, `${key}: one reduce entry`);
    const e = red[0], rows = (e.r1 - e.r0) * (e.h1 - e.h0);
    assert.deepEqual([e.h1, e.r1, e.numSplits], [first.h1, first.r1, list.length], `${key}: the reduce entry matches its splits`);
    list.forEach((c, s) => assert.equal(c.task.partialRow, e.first + s * rows, `${key}: split ${s}'s partial rows`));
    assert.ok(list.every((c) => c.b1 - c.b0 >= MIN_SPLIT_BLOCKS), `${key}: a split of fewer than ${MIN_SPLIT_BLOCKS} blocks`);
  }
  // partial rows: disjoint ranges that fill [0, partialRows)
  const ranges = reduce.map((e) => [e.first, e.first + e.numSplits * (e.r1 - e.r0) * (e.h1 - e.h0)]).sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [a, b] of ranges) {
    assert.equal(a, end, "partial rows of reduce entries are disjoint and contiguous");
    end = b;
  }
  assert.equal(end, plan.partialRows);
  // costliest first, costs reported, multiply-adds of the whole call
  assert.deepEqual(Array.from(plan.taskCosts), tasks.map(cost), "taskCosts are rows x blocks, in task order");
  for (let i = 1; i < tasks.length; i++) assert.ok(cost(tasks[i]) <= cost(tasks[i - 1]), "tasks run costliest first");
  assert.equal(plan.macs, tasks.reduce((n, t) => n + cost(t), 0) * 16 * p.headDim * 2);
  if (numThreads === 1) assert.equal(plan.numReduce, 0, "one thread never splits");
  return { tasks, reduce };
}

test("decode on one thread: one task per KV head, no split", () => {
  const p = params(1), seqs = [seq(1, 8000)], numGlobal = (_: number, g: number) => [100, 7900][g];
  const plan = planPagedAttention(p, seqs, numGlobal, 1, 24);
  assert.equal(plan.numTasks, 2);
  checkPlan(plan, p, seqs, numGlobal, 1);
});

test("ragged decode on two threads: the long head is split along keys, the short one is not", () => {
  const p = params(1), seqs = [seq(1, 8000)], numGlobal = (_: number, g: number) => [100, 7900][g];
  const { tasks, reduce } = checkPlan(planPagedAttention(p, seqs, numGlobal, 2, 24), p, seqs, numGlobal, 2);
  assert.equal(tasks.filter((t) => t.g === 0).length, 1);
  assert.ok(tasks.filter((t) => t.g === 1).length >= 6);
  assert.equal(reduce.length, 1);
});

test("a whole-window prefill chunk is cut into query blocks, never split along keys", () => {
  const p = params(1), seqs = [seq(256, 3300)], numGlobal = (_: number, g: number) => [3000, 40][g];
  const plan = planPagedAttention(p, seqs, numGlobal, 2, 24);
  checkPlan(plan, p, seqs, numGlobal, 2);
  assert.equal(plan.numReduce, 0);
  assert.ok(plan.numTasks >= 16);
});

test("a step of several sequences: long decodes split across the batch, prefill chunks and short decodes not", () => {
  const p = params(4);
  const seqs = [seq(1, 6000), seq(16, 100, 64), seq(1, 40), seq(1, 3000)];
  const globals = [[5000, 200], [0, 0], [0, 0], [2700, 2700]];
  const numGlobal = (s: number, g: number) => globals[s][g];
  const { tasks, reduce } = checkPlan(planPagedAttention(p, seqs, numGlobal, 4, 24), p, seqs, numGlobal, 4);
  const split = reduce.map((e) => `${e.seq}/${e.h0}`);
  assert.deepEqual(split.sort(), ["0/0", "3/0", "3/3"], "the long heads of the long decodes are split, nothing else");
  assert.ok(tasks.filter((t) => t.seq === 1).length >= 4, "the prefill chunk is cut into query blocks");
  // a prefill chunk that dwarfs the decodes: splitting them would not pay
  const big = [seq(1, 6000), seq(256, 700, 256)];
  const bigGlobals = (s: number, g: number) => [[5000, 200], [400, 400]][s][g];
  assert.equal(checkPlan(planPagedAttention(params(2), big, bigGlobals, 4, 24), params(2), big, bigGlobals, 4).reduce.length, 0);
});

test("random steps: GQA groups 1-8, head chunks (few rows per task), empty heads, 1-16 threads", () => {
  const random = new TestRandom(1200);
  for (let i = 0; i < 300; i++) {
    const numKvHeads = 1 + random.int(4), group = 1 + random.int(8);
    const p = params(1 + random.int(5), numKvHeads * group, numKvHeads);
    const seqs = Array.from({ length: p.numSeqs }, () => {
      const window = 16 * (1 + random.int(16));
      return seq(random.next() < 0.5 ? 1 : 1 + random.int(window), random.int(5000), window);
    });
    const globals = seqs.map(() => Array.from({ length: numKvHeads }, () => (random.next() < 0.3 ? 0 : random.int(4000))));
    const numThreads = 1 + random.int(16), maxRows = 1 + random.int(48);
    const numGlobal = (s: number, g: number) => globals[s][g];
    const plan = planPagedAttention(p, seqs, numGlobal, numThreads, maxRows);
    const { tasks } = checkPlan(plan, p, seqs, numGlobal, numThreads);
    assert.ok(tasks.every((t) => (t.r1 - t.r0) * (t.h1 - t.h0) <= maxRows), "no task holds more rows than maxRows");
  }
});
