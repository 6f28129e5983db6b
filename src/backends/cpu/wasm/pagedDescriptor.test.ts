/**
 * One source for the binary layout the host (TypeScript) and the kernels
 * (AssemblyScript) share: this test reads the `export const NAME = value`
 * lines of assembly/pagedDescriptor.ts and assembly/pagedBlock.ts, and the
 * entry fields the kernels load, and checks each against the TypeScript side:
 * the descriptor header as writeDescriptor fills it, ENTRIES_AT, ENTRY and
 * PARTIAL_HEAD (pagedAttentionPlan.ts), the sequence records' PS_* against
 * S_* (pagedAttention.ts), and KV_DTYPE_CODE against the page types. A
 * change on one side alone fails here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as records from "../pagedAttention.js";
import type { PagedAttentionParams, PagedAttentionPointers } from "../pagedAttention.js";
import { KV_DTYPE_CODE, KV_F16_FINITE_CODE } from "./controlBlock.js";
import { ENTRIES_AT, ENTRY, PARTIAL_HEAD, writeDescriptor, type PagedPlan } from "./pagedAttentionPlan.js";

/** The sources sit at the same depth under src/ and dist/. */
const assemblyFile = (name: string) => readFileSync(new URL(`../../../../src/backends/cpu/wasm/assembly/${name}`, import.meta.url), "utf8");

/** NAME -> value of every `export const A = 1, B: i32 = 2;` line with integer values. */
function exportedConstants(source: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of source.split("\n")) {
    const m = /^export const (.*);\s*(\/\/.*)?$/.exec(line.trim());
    if (!m) continue;
    for (const decl of m[1].split(",")) {
      const d = /^\s*(\w+)\s*(?::\s*\w+\s*)?=\s*(-?\d+)\s*$/.exec(decl);
      if (d) out.set(d[1], Number(d[2]));
    }
  }
  return out;
}

/** The entry fields a kernel function loads, in byte-offset order: `name = [row0 + ]load<i32>(e[, offset])`. */
function loadedFields(source: string, fn: string): string[] {
  const body = source.slice(source.indexOf(`export function ${fn}(`));
  const fields: [number, string][] = [];
  for (const m of body.slice(0, body.indexOf("\n}")).matchAll(/(\w+) = (?:\w+ \+ )?load<i32>\(e(?:, (\d+))?\)/g)) fields.push([Number(m[2] ?? 0), m[1]]);
  fields.sort((a, b) => a[0] - b[0]);
  fields.forEach(([offset], i) => assert.equal(offset, 4 * i, `${fn}: entry fields are consecutive i32`));
  return fields.map(([, name]) => name);
}

const descriptor = exportedConstants(assemblyFile("pagedDescriptor.ts"));
const block = exportedConstants(assemblyFile("pagedBlock.ts"));
const value = (map: Map<string, number>, name: string) => {
  const v = map.get(name);
  assert.ok(v !== undefined, `assembly does not export ${name}`);
  return v;
};

test("the parser reads the assembly constants (a check of the check)", () => {
  assert.deepEqual([...exportedConstants("export const A = 0, B = 12;\nexport const C: i32 = -3; // note\nconst D = 4;\nexport const E = 1 << 3;")], [["A", 0], ["B", 12], ["C", -3]]);
  assert.ok(descriptor.size >= 26 && block.size >= 6, `${descriptor.size} descriptor and ${block.size} block constants found`);
});

test("entry table: ENTRIES_AT, ENTRY and PARTIAL_HEAD agree", () => {
  assert.equal(value(descriptor, "ENTRIES_AT"), ENTRIES_AT);
  assert.equal(value(descriptor, "ENTRY"), ENTRY);
  assert.equal(value(descriptor, "PARTIAL_HEAD"), PARTIAL_HEAD);
});

test("descriptor header: every slot the kernels read holds what writeDescriptor put there", () => {
  const ptrs: PagedAttentionPointers = { out: 1024, q: 2048, kFresh: 3072, vFresh: 4096, kPages: 5120, vPages: 6144, seqs: 7168 };
  const plan: PagedPlan = { entries: Int32Array.from({ length: 2 * ENTRY + ENTRY }, (_, i) => 100 + i), numTasks: 2, numReduce: 1, partialRows: 6, taskCosts: new Float64Array(2), macs: 0 };
  for (const [kvDType, pagesFinite, code] of [["f32", false, KV_DTYPE_CODE.f32], ["f16", false, KV_DTYPE_CODE.f16], ["bf16", true, KV_DTYPE_CODE.bf16], ["f16", true, KV_F16_FINITE_CODE]] as const) {
    const p: PagedAttentionParams = { numSeqs: 3, numHeads: 12, numKvHeads: 4, headDim: 80, scale: 0.375, kvDType, pagesFinite };
    const buffer = new ArrayBuffer(4 * (ENTRIES_AT + plan.entries.length) + 64);
    writeDescriptor(buffer, 64, ptrs, p, plan, 8192);
    const slots = new Int32Array(buffer, 64), floats = new Float32Array(buffer, 64);
    const expected: Record<string, number> = {
      OUT: ptrs.out, Q: ptrs.q, K_FRESH: ptrs.kFresh, V_FRESH: ptrs.vFresh, K_PAGES: ptrs.kPages, V_PAGES: ptrs.vPages, SEQS: ptrs.seqs,
      HQ: p.numHeads, HKV: p.numKvHeads, D: p.headDim, DTYPE: code, PARTIALS: 8192, NUM_TASKS: plan.numTasks, SAFE: pagesFinite ? 0 : 1,
    };
    for (const [name, want] of Object.entries(expected)) assert.equal(slots[value(descriptor, name)], want, `slot ${name} (${kvDType}${pagesFinite ? ", finite" : ""})`);
    assert.equal(floats[value(descriptor, "SCALE")], p.scale, "slot SCALE (f32)");
    assert.deepEqual(Array.from(slots.subarray(ENTRIES_AT, ENTRIES_AT + plan.entries.length)), Array.from(plan.entries), "entries from ENTRIES_AT");
    // every header constant of the assembly is one of the slots above: a slot added on one side only fails
    const header = [...descriptor].filter(([name, v]) => v < ENTRIES_AT && !/^S_|^SEQ_REC$|^ENTRY$|^PARTIAL_HEAD$/.test(name)).map(([name]) => name);
    assert.deepEqual(header.sort(), [...Object.keys(expected), "SCALE"].sort());
  }
});

test("sequence records: S_* of the assembly are PS_* of pagedAttention.ts, SEQ_REC is PAGED_SEQ_FIELDS", () => {
  const asFields = [...descriptor].filter(([name]) => name.startsWith("S_"));
  const tsFields = Object.entries(records).filter(([name]) => name.startsWith("PS_"));
  assert.deepEqual(asFields.map(([name, v]) => [name.slice(2), v]).sort(), tsFields.map(([name, v]) => [name.slice(3), v]).sort());
  assert.equal(asFields.length, 13);
  assert.equal(value(descriptor, "SEQ_REC"), records.PAGED_SEQ_FIELDS);
});

test("task and reduce entries: the kernels load the fields in the order the planner writes them", () => {
  // pagedAttentionPlan.ts writes [seq, g, h0, h1, r0, r1, b0, b1, partialRow, 0] and [seq, h0, h1, r0, r1, firstPartialRow, numSplits, 0, 0, 0]
  assert.deepEqual(loadedFields(assemblyFile("pagedAttention.ts"), "pagedAttentionTask"), ["seq", "g", "h0", "h1", "r0", "r1", "b0", "b1", "partialRow"]);
  assert.deepEqual(loadedFields(assemblyFile("pagedReduce.ts"), "pagedAttentionReduce"), ["seq", "h0", "h1", "r0", "r1", "first", "numSplits"]);
});

test("page types: KV_DTYPE_CODE and KV_F16_FINITE_CODE are the kernels' KV_* codes", () => {
  assert.equal(value(block, "KV_F32"), KV_DTYPE_CODE.f32);
  assert.equal(value(block, "KV_F16"), KV_DTYPE_CODE.f16);
  assert.equal(value(block, "KV_BF16"), KV_DTYPE_CODE.bf16);
  assert.equal(value(block, "KV_F16_FINITE"), KV_F16_FINITE_CODE);
  assert.equal(value(block, "PAGE"), records.PAGE_SIZE);
});
