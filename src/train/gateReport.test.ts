import { test } from "node:test";
import assert from "node:assert/strict";
import { gateReport, gateReportSvg, NUM_BINS } from "./gateReport.js";

test("gate report: histograms and admitted fractions per (layer, head)", () => {
  // two samples, two layers, two heads, T = 4 and 2
  const scores = [
    [Float32Array.of(0.05, 0.2, 0.99, 1, /* head 1 */ 0.001, 0.001, 0.1, 0.5), Float32Array.of(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)],
    [Float32Array.of(0.9, 0.9, /* head 1 */ 0.3, 0.01), Float32Array.of(0.01, 0.01, 0.01, 0.01)],
  ];
  const r = gateReport(scores, 2, 0.1);
  assert.equal(r.heads.length, 4);
  const [l0h0, l0h1, l1h0, l1h1] = r.heads;
  assert.equal(l0h0!.admitted, 5 / 6);
  assert.equal(l0h1!.admitted, 2 / 6, "0.1 itself is not admitted (g > tau)");
  assert.equal(l1h0!.admitted, 4 / 6);
  assert.equal(l1h1!.admitted, 4 / 6);
  assert.equal(r.admitted, 15 / 24);
  assert.equal(l0h0!.histogram.length, NUM_BINS);
  assert.equal(l0h0!.histogram[NUM_BINS - 1], 2, "0.99 and 1 in the top bin");
  assert.equal(l0h0!.histogram.reduce((a, b) => a + b, 0), 6);
  assert.equal(l0h1!.histogram[0], 3, "the floor (1e-3) twice and 0.01 in the first bin");
  const svg = gateReportSvg(r, "a <test> gate");
  assert.match(svg, /^<svg /);
  assert.ok(svg.includes("a &lt;test&gt; gate"));
  for (const text of ["layer 0 head 0: 83.3% admitted", "layer 0 head 1: 33.3% admitted", "layer 1 head 1: 66.7% admitted"]) assert.ok(svg.includes(text), text);
});
