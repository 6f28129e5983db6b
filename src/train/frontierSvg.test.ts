import { test } from "node:test";
import assert from "node:assert/strict";
import { frontierOf, frontierSvg } from "./frontierSvg.js";

test("frontier: the points no other beats on both axes, by admitted fraction", () => {
  const f = frontierOf([
    { admitted: 0.4, accuracy: 0.9 },
    { admitted: 0.1, accuracy: 0.5 },
    { admitted: 0.2, accuracy: 0.4 }, // beaten by (0.1, 0.5)
    { admitted: 0.12, accuracy: 0.95 },
    { admitted: 0.7, accuracy: 0.95 }, // beaten by (0.12, 0.95)
  ]);
  assert.deepEqual(f, [{ admitted: 0.1, accuracy: 0.5 }, { admitted: 0.12, accuracy: 0.95 }]);
});

test("frontier SVG: a panel per length, every point labelled, a step line per series", () => {
  const svg = frontierSvg(
    [
      { name: "ours", color: "#d62728", points: [{ label: "0.08", admitted: 0.1, accuracy: { 4096: 0.95, 8192: 0.9 } }, { label: "0.16", admitted: 0.05, accuracy: { 4096: 0.7 } }] },
      { name: "reference <PyTorch>", color: "#1f77b4", dashed: true, points: [{ label: "0.08m", admitted: 0.12, accuracy: { 4096: 0.925, 8192: 0.95 } }] },
      { name: "full", color: "#000", baseline: true, points: [{ label: "full", admitted: 1, accuracy: { 4096: 0.95, 8192: 0.975 } }] },
    ],
    [4096, 8192],
    "frontier",
  );
  assert.match(svg, /^<svg /);
  assert.ok(svg.includes("NIAH @ 4096") && svg.includes("NIAH @ 8192"));
  assert.ok(svg.includes("reference &lt;PyTorch&gt;"));
  assert.equal((svg.match(/<polyline /g) ?? []).length, 4, "ours and the reference in each panel; none for the baseline");
  assert.equal((svg.match(/<circle cx=/g) ?? []).length, 3 + 4 + 3, "3 in the legend, 4 points at 4096, 3 at 8192 (one gate has no 8192 result)");
});
