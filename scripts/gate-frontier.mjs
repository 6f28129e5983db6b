// The accuracy-memory frontier of trained gates against the reference's:
// reads `wgkv eval` results (results.json, tasks niah) and the reference
// numbers (docs/gate-training/reference.json), writes an SVG (NIAH accuracy
// against admitted fraction, one panel per length) and prints a markdown table.
//
//   node scripts/gate-frontier.mjs --out docs/gate-training/frontier.svg eval-a/results.json eval-b/results.json
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { frontierSvg } from "../dist/train/frontierSvg.js";

const args = process.argv.slice(2);
const outAt = args.indexOf("--out");
const out = outAt >= 0 ? args.splice(outAt, 2)[1] : "frontier.svg";
const refAt = args.indexOf("--reference");
const refFile = refAt >= 0 ? args.splice(refAt, 2)[1] : new URL("../docs/gate-training/reference.json", import.meta.url);
const reference = JSON.parse(readFileSync(refFile, "utf8"));

// policy -> { length -> { accuracy, admitted } }, over every results file given (later files win)
const ours = new Map();
for (const file of args) {
  for (const cell of JSON.parse(readFileSync(file, "utf8"))) {
    if (cell.task !== "niah") continue;
    const byLength = ours.get(cell.policy) ?? new Map();
    byLength.set(cell.length, { accuracy: cell.accuracy, admitted: cell.admitted_fraction, cases: cell.cases });
    ours.set(cell.policy, byLength);
  }
}
const lengths = [...new Set([...ours.values()].flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
const point = (label, byLength) => ({
  label,
  admitted: Object.fromEntries([...byLength].map(([n, c]) => [n, c.admitted])),
  accuracy: Object.fromEntries([...byLength].map(([n, c]) => [n, c.accuracy])),
});
const label = (policy) => (policy.startsWith("gate:") ? basename(policy.slice(5)).replace(/\.safetensors$/, "") : policy);
const gates = [...ours].filter(([p]) => p.startsWith("gate:"));
const baselines = [...ours].filter(([p]) => !p.startsWith("gate:"));
const refPoint = (g) => ({ label: g.label, admitted: g.admitted, accuracy: g.niah });
const series = [
  { name: "this project's gates (TypeScript, CPU)", color: "#d62728", points: gates.map(([p, m]) => point(label(p), m)) },
  { name: "reference gates (PyTorch recipe, H200)", color: "#1f77b4", dashed: true, points: reference.gates.map(refPoint) },
  { name: "baselines measured here (full, local, random)", color: "#555", baseline: true, points: baselines.map(([p, m]) => point(label(p), m)) },
];
writeFileSync(out, frontierSvg(series, lengths, "NIAH accuracy against admitted fraction: trained write gates, this project vs the reference recipe"));

const rows = [`| policy | ${lengths.map((n) => `admitted @${n}`).join(" | ")} | ${lengths.map((n) => `NIAH @${n}`).join(" | ")} |`, `|---|${lengths.map(() => "---|").join("")}${lengths.map(() => "---|").join("")}`];
for (const [p, m] of ours) {
  rows.push(`| ${label(p)} | ${lengths.map((n) => m.get(n)?.admitted.toFixed(3) ?? "").join(" | ")} | ${lengths.map((n) => (m.get(n) ? `${m.get(n).accuracy.toFixed(3)} (${m.get(n).cases})` : "")).join(" | ")} |`);
}
console.log(rows.join("\n"));
console.error(`wrote ${out}`);
