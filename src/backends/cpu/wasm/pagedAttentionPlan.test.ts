import { test } from "node:test";
import assert from "node:assert/strict";
import type { PagedAttentionParams } from "../pagedAttention.js";
import { ENTRY, planPagedAttention, type PagedPlan } from "./pagedAttentionPlan.js";

const params = (numQueries: number, numHeads = 6, numKvHeads = 2): PagedAttentionParams => ({
  numQueries, qPos0: 5000, numHeads, numKvHeads, headDim: 64, scale: 0.125, window: 256, rowStride: 600, kvDType: "f32",
});

interface Entry { g: number; h0: number; h1: number; r0: number; r1: number; b0: number; b1: number; p: number }

function entries(plan: PagedPlan): { tasks: Entry[]; reduce: Entry[] } {
  const all: Entry[] = [];
  for (let i = 0; i < plan.entries.length; i += ENTRY) {
    const [g, h0, h1, r0, r1, b0, b1, p] = plan.entries.subarray(i, i + ENTRY);
    all.push({ g, h0, h1, r0, r1, b0, b1, p });
  }
  return { tasks: all.slice(0, plan.numTasks), reduce: all.slice(plan.numTasks) };
}

/** Every (query, head) row is covered once per key block: by one final task, or by splits that tile its blocks. */
function checkCoverage(plan: PagedPlan, p: PagedAttentionParams, numRing: Int32Array, numGlobal: Int32Array): void {
  const { tasks, reduce } = entries(plan);
  const group = p.numHeads / p.numKvHeads;
  const seen = new Map<string, number[][]>();
  for (const t of tasks) {
    assert.ok(t.h0 >= t.g * group && t.h1 <= (t.g + 1) * group && t.r0 < t.r1 && t.b0 < t.b1, JSON.stringify(t));
    const blocks = Math.ceil(numRing[t.g] / 16) + Math.ceil(numGlobal[t.g] / 16) + Math.ceil(t.r1 / 16);
    assert.ok(t.b1 <= blocks);
    for (let r = t.r0; r < t.r1; r++) {
      for (let h = t.h0; h < t.h1; h++) {
        const key = `${r},${h}`;
        const list = seen.get(key) ?? [];
        list.push([t.b0, t.b1, t.p, blocks]);
        seen.set(key, list);
      }
    }
  }
  assert.equal(seen.size, p.numQueries * p.numHeads);
  for (const [key, list] of seen) {
    list.sort((a, b) => a[0] - b[0]);
    assert.equal(list[0][0], 0, key);
    for (let i = 1; i < list.length; i++) assert.equal(list[i][0], list[i - 1][1], key);
    assert.equal(list[list.length - 1][1], list[0][3], key);
    assert.equal(list.length === 1, list[0][2] === -1, `${key}: a lone task writes out, splits write partials`);
  }
  const splitRows = reduce.reduce((n, e) => n + (e.r1 - e.r0) * (e.h1 - e.h0) * e.b1, 0); // b1 slot: numSplits
  assert.equal(splitRows, plan.partialRows);
  for (let i = 1; i < tasks.length; i++) {
    const cost = (t: Entry) => (t.r1 - t.r0) * (t.h1 - t.h0) * (t.b1 - t.b0);
    assert.ok(cost(tasks[i]) <= cost(tasks[i - 1]), "tasks run costliest first");
  }
}

test("decode on one thread: one task per KV head, no split", () => {
  const p = params(1);
  const plan = planPagedAttention(p, Int32Array.of(256, 256), Int32Array.of(100, 7900), 1, 24);
  assert.equal(plan.numTasks, 2);
  assert.equal(plan.numReduce, 0);
  checkCoverage(plan, p, Int32Array.of(256, 256), Int32Array.of(100, 7900));
});

test("ragged decode on two threads: the long head is split along keys, the short one is not", () => {
  const p = params(1);
  const numRing = Int32Array.of(256, 256), numGlobal = Int32Array.of(100, 7900);
  const plan = planPagedAttention(p, numRing, numGlobal, 2, 24);
  const { tasks } = entries(plan);
  assert.equal(tasks.filter((t) => t.g === 0).length, 1);
  assert.ok(tasks.filter((t) => t.g === 1).length >= 6);
  assert.equal(plan.numReduce, 1);
  checkCoverage(plan, p, numRing, numGlobal);
});

test("a whole-window prefill chunk is cut into query blocks, never split along keys", () => {
  const p = params(256);
  const numRing = Int32Array.of(256, 256), numGlobal = Int32Array.of(3000, 40);
  const plan = planPagedAttention(p, numRing, numGlobal, 2, 24);
  assert.equal(plan.numReduce, 0);
  assert.ok(plan.numTasks >= 16);
  checkCoverage(plan, p, numRing, numGlobal);
});

test("short chunks, GQA groups 1-8, empty heads and many threads", () => {
  for (const [T, Hq, Hkv, threads] of [[3, 6, 2, 2], [16, 8, 8, 4], [5, 32, 4, 8], [1, 2, 1, 16], [1, 48, 1, 3]]) {
    const p = params(T, Hq, Hkv);
    const numRing = Int32Array.from({ length: Hkv }, (_, g) => (g * 37) % 257);
    const numGlobal = Int32Array.from({ length: Hkv }, (_, g) => (g % 2 ? 0 : 1000 + g));
    checkCoverage(planPagedAttention(p, numRing, numGlobal, threads, 24), p, numRing, numGlobal);
  }
});
