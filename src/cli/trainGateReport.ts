/**
 * @module cli/trainGateReport
 *
 * What `wgkv train-gate` writes beside the gate: `<stem>.histograms.svg`
 * (gate scores per layer and KV head on held-out samples), `<stem>.report.json`
 * (the run's settings, timings, final losses and admitted fractions), and the
 * admitted fractions as a table on stdout.
 */
import { writeOutFile } from "./outFolder.js";
import { basename } from "node:path";
import { gateReport, gateReportSvg, type GateReport } from "../train/gateReport.js";

/** Writes the report files of gate `out` from held-out scores [sample][layer]; returns the files' stem. */
export async function writeTrainReport(out: string, scores: readonly (readonly Float32Array[])[], numKvHeads: number, run: Record<string, unknown> & { tau: number; lambda: number; needleMix: number; steps: number; batch: number; length: number; reportSamples: number }, quiet: boolean): Promise<string> {
  const stem = out.replace(/\.safetensors$/i, "");
  const report = gateReport(scores, numKvHeads, run.tau);
  const title = `${basename(out)}: lambda ${run.lambda}, ${Math.round(run.needleMix * 100)}% needles, ${run.steps} steps x ${run.batch} x ${run.length} tokens`;
  await writeOutFile("--out", `${stem}.histograms.svg`, gateReportSvg(report, title));
  const heads = report.heads.map((h) => ({ layer: h.layer, head: h.head, admitted: +h.admitted.toFixed(4), histogram: h.histogram }));
  await writeOutFile("--out", `${stem}.report.json`, JSON.stringify({ ...run, admitted: report.admitted, heads }, null, 2) + "\n");
  if (!quiet) process.stdout.write(admittedTable(report, run.reportSamples));
  return stem;
}

/** Admitted fraction per (layer, KV head) on the held-out samples, as a small table. */
function admittedTable(report: GateReport, samples: number): string {
  if (report.heads.length === 0) return "";
  const numHeads = Math.max(...report.heads.map((h) => h.head + 1));
  const lines = [`admitted (g > ${report.tau}) on ${samples} held-out samples: ${(report.admitted * 100).toFixed(1)}% overall`, `layer  ${Array.from({ length: numHeads }, (_, h) => `head ${h}`.padStart(7)).join(" ")}`];
  for (let l = 0; l * numHeads < report.heads.length; l++) {
    const row = report.heads.filter((h) => h.layer === l).map((h) => `${(h.admitted * 100).toFixed(1)}%`.padStart(7));
    lines.push(`${String(l).padStart(5)}  ${row.join(" ")}`);
  }
  return lines.join("\n") + "\n";
}

