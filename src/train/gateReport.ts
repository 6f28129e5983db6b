/**
 * @module train/gateReport
 *
 * What a trained gate does on held-out samples: per (layer, KV head) the
 * histogram of its scores g and the fraction admitted (g > tau), as numbers
 * and as an SVG of small bar charts (one panel per head, a line at tau).
 */

export interface HeadReport {
  readonly layer: number;
  readonly head: number;
  readonly admitted: number;
  /** Counts of g in NUM_BINS equal bins over [0, 1]. */
  readonly histogram: readonly number[];
}

export interface GateReport {
  readonly tau: number;
  /** Admitted entries over all (layer, head, token) entries. */
  readonly admitted: number;
  readonly heads: readonly HeadReport[];
}

export const NUM_BINS = 20;

/** scores[sample][layer]: g of each KV head, [Hkv * T] head-major. */
export function gateReport(scores: readonly (readonly Float32Array[])[], numKvHeads: number, tau: number): GateReport {
  const numLayers = scores[0]?.length ?? 0;
  const t32 = Math.fround(tau);
  const heads: HeadReport[] = [];
  let admittedAll = 0, totalAll = 0;
  for (let l = 0; l < numLayers; l++) {
    for (let h = 0; h < numKvHeads; h++) {
      const histogram = new Array<number>(NUM_BINS).fill(0);
      let admitted = 0, total = 0;
      for (const sample of scores) {
        const g = sample[l]!;
        const T = g.length / numKvHeads;
        for (let t = h * T; t < (h + 1) * T; t++) {
          const v = g[t]!;
          histogram[Math.min(NUM_BINS - 1, Math.floor(v * NUM_BINS))]++;
          if (v > t32) admitted++;
          total++;
        }
      }
      heads.push({ layer: l, head: h, admitted: admitted / total, histogram });
      admittedAll += admitted;
      totalAll += total;
    }
  }
  return { tau, admitted: totalAll ? admittedAll / totalAll : 0, heads };
}

const W = 150, H = 96, PAD = { left: 8, right: 8, top: 22, bottom: 16 };

/** Small multiples: one row per layer, one column per KV head; bars on a log scale of counts. */
export function gateReportSvg(report: GateReport, title: string): string {
  const numLayers = Math.max(0, ...report.heads.map((r) => r.layer + 1));
  const numHeads = Math.max(0, ...report.heads.map((r) => r.head + 1));
  const top = 40;
  const width = Math.max(360, numHeads * W + 20), height = top + numLayers * H + 10;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="16" font-size="12" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="10" y="32">gate scores g per (layer, KV head), ${NUM_BINS} bins over [0, 1], counts on a log scale; red: tau ${report.tau}; all heads admit ${(report.admitted * 100).toFixed(1)}%</text>`,
  ];
  for (const r of report.heads) {
    const x0 = 10 + r.head * W, y0 = top + r.layer * H;
    const pw = W - PAD.left - PAD.right, ph = H - PAD.top - PAD.bottom;
    const max = Math.log1p(Math.max(1, ...r.histogram));
    out.push(`<text x="${x0 + PAD.left}" y="${y0 + 14}">layer ${r.layer} head ${r.head}: ${(r.admitted * 100).toFixed(1)}% admitted</text>`);
    out.push(`<rect x="${x0 + PAD.left}" y="${y0 + PAD.top}" width="${pw}" height="${ph}" fill="none" stroke="#bbb"/>`);
    r.histogram.forEach((c, i) => {
      const bh = (Math.log1p(c) / max) * ph;
      const bx = x0 + PAD.left + (i / NUM_BINS) * pw;
      out.push(`<rect x="${bx.toFixed(1)}" y="${(y0 + PAD.top + ph - bh).toFixed(1)}" width="${(pw / NUM_BINS - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="#1f77b4"><title>g in [${(i / NUM_BINS).toFixed(2)}, ${((i + 1) / NUM_BINS).toFixed(2)}): ${c}</title></rect>`);
    });
    const tx = x0 + PAD.left + report.tau * pw;
    out.push(`<line x1="${tx}" x2="${tx}" y1="${y0 + PAD.top}" y2="${y0 + PAD.top + ph}" stroke="#d62728"/>`);
    out.push(`<text x="${x0 + PAD.left}" y="${y0 + H - 4}">0</text><text x="${x0 + PAD.left + pw}" y="${y0 + H - 4}" text-anchor="end">1</text>`);
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
