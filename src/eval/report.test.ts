/**
 * Results: cell summaries, the markdown table, the Pareto frontier and the SVG.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { paretoFrontier, paretoSvg } from "./paretoSvg.js";
import { markdownReport, summarizeCell, type CellResult } from "./report.js";
import type { CaseResult } from "./runner.js";

function caseResult(teacherForced: boolean, greedyScore: number | null, resident: number): CaseResult {
  return {
    teacherForced,
    correctPrefix: teacherForced ? 20 : 3,
    greedyText: greedyScore === null ? null : "x",
    greedyScore,
    greedyRan: !teacherForced,
    numPromptTokens: 2000,
    admittedFraction: 0.4,
    residentBytes: resident,
    peakBytes: resident,
    fullAttentionBytes: 1000,
    ms: 500,
  };
}

function cell(policy: string, accuracy: number, kvFraction: number): CellResult {
  const results = [caseResult(true, 1, 0), caseResult(false, 0, 0)];
  return { ...summarizeCell("niah", 2048, { label: policy, spec: policy }, results), accuracy, kv_fraction: kvFraction };
}

test("a cell averages its cases", () => {
  const c = summarizeCell("niah", 2048, { label: "gate:g.pt", spec: "gate:/x/g.pt" }, [caseResult(true, 1, 400), caseResult(false, 0.5, 600), caseResult(false, 0, 500)]);
  assert.equal(c.cases, 3);
  assert.equal(c.accuracy, 0.3333);
  assert.equal(c.teacher_forced_accuracy, c.accuracy);
  assert.equal(c.greedy_accuracy, 0.5);
  assert.equal(c.greedy_runs, 2);
  assert.equal(c.kv_bytes, 500);
  assert.equal(c.kv_fraction, 0.5);
  assert.equal(c.admitted_fraction, 0.4);
  assert.equal(c.seconds, 1.5);
  assert.equal(c.policy, "gate:g.pt");
  assert.equal(c.policy_spec, "gate:/x/g.pt");
  assert.equal(summarizeCell("niah", 2048, { label: "p", spec: "p" }, [caseResult(true, null, 1)]).greedy_accuracy, null);
});

test("the markdown table has one row per cell", () => {
  const md = markdownReport([cell("full", 1, 1), cell("local", 0.05, 0.12)], { model: "m", command: "wgkv eval", window: 256, seed: 0 });
  assert.match(md, /\| niah \| 2048 \| full \| 2 \| 1\.000 \| 0\.500 \| 0\.400 \|/);
  assert.match(md, /\| niah \| 2048 \| local \| 2 \| 0\.050 \|/);
});

test("the Pareto frontier keeps cells no other beats on memory and accuracy", () => {
  const cells = [cell("full", 1, 1), cell("local", 0.05, 0.12), cell("gate", 0.975, 0.45), cell("random", 0.05, 0.45), cell("sinks", 0.05, 0.13)];
  assert.deepEqual(
    paretoFrontier(cells).map((c) => c.policy),
    ["local", "gate", "full"],
  );
});

test("the SVG has a panel per (task, length) and a point per cell", () => {
  const cells = [cell("full", 1, 1), cell("local", 0.05, 0.12), { ...cell("full", 0.95, 1), length: 4096 }];
  const svg = paretoSvg(cells);
  assert.ok(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<circle [^>]*r="5" fill="[^"]*" fill-opacity/g)?.length, 3);
  assert.ok(svg.includes("niah @ 2048") && svg.includes("niah @ 4096"));
  assert.ok(!/NaN|undefined/.test(svg));
});
