/**
 * @module eval/paretoSvg
 *
 * The Pareto view of a sweep as a hand-written SVG: one panel per (task,
 * length), accuracy against KV memory (resident bytes as a fraction of full
 * attention), one colour per policy, and the frontier of policies that no
 * other beats on both axes drawn as a step line.
 */
import type { CellResult } from "./report.js";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const PANEL = { width: 280, height: 210, left: 48, right: 12, top: 28, bottom: 38 };

/** An SVG document for the cells of a sweep. */
export function paretoSvg(cells: readonly CellResult[]): string {
  const tasks = unique(cells.map((c) => c.task));
  const lengths = unique(cells.map((c) => c.length)).sort((a, b) => a - b);
  const policies = unique(cells.map((c) => c.policy));
  const color = (policy: string) => COLORS[policies.indexOf(policy) % COLORS.length];
  const width = Math.max(1, lengths.length) * PANEL.width;
  // NOTE: about 6.5 px per character at font-size 11; long gate paths get a row each.
  const itemWidth = 24 + 6.5 * Math.max(...policies.map((p) => p.length), 1);
  const perRow = Math.max(1, Math.floor((width - 10) / itemWidth));
  const legendHeight = 20 * Math.ceil(policies.length / perRow) + 10;
  const height = legendHeight + Math.max(1, tasks.length) * PANEL.height;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  policies.forEach((p, i) => {
    const x = 10 + (i % perRow) * itemWidth;
    const y = 16 + 20 * Math.floor(i / perRow);
    parts.push(`<circle cx="${x + 5}" cy="${y - 4}" r="5" fill="${color(p)}"/>`, `<text x="${x + 14}" y="${y}">${escapeXml(p)}</text>`);
  });
  tasks.forEach((task, row) =>
    lengths.forEach((length, col) => {
      const inCell = cells.filter((c) => c.task === task && c.length === length);
      parts.push(panel(inCell, `${task} @ ${length}`, col * PANEL.width, legendHeight + row * PANEL.height, color));
    }),
  );
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function panel(cells: readonly CellResult[], title: string, x0: number, y0: number, color: (p: string) => string): string {
  const plotW = PANEL.width - PANEL.left - PANEL.right;
  const plotH = PANEL.height - PANEL.top - PANEL.bottom;
  const px = (f: number) => x0 + PANEL.left + Math.min(1.05, Math.max(0, f)) / 1.05 * plotW;
  const py = (a: number) => y0 + PANEL.top + (1 - Math.min(1, Math.max(0, a))) * plotH;
  const out = [`<text x="${x0 + PANEL.left}" y="${y0 + 16}" font-weight="bold">${escapeXml(title)}</text>`];
  out.push(`<rect x="${px(0)}" y="${py(1)}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${px(0)}" x2="${px(1.05)}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
    out.push(`<text x="${px(0) - 4}" y="${py(t) + 4}" text-anchor="end">${t.toFixed(2)}</text>`);
    out.push(`<text x="${px(t)}" y="${py(0) + 14}" text-anchor="middle">${t.toFixed(2)}</text>`);
  }
  out.push(`<text x="${px(0.525)}" y="${py(0) + 30}" text-anchor="middle">KV memory / full attention</text>`);
  out.push(`<text transform="translate(${x0 + 12} ${py(0.5)}) rotate(-90)" text-anchor="middle">accuracy</text>`);
  const frontier = paretoFrontier(cells);
  if (frontier.length > 1) {
    // Step line: accuracy holds until the next frontier point's memory.
    const points: string[] = [];
    frontier.forEach((c, i) => {
      if (i > 0) points.push(`${px(c.kv_fraction)},${py(frontier[i - 1].accuracy)}`);
      points.push(`${px(c.kv_fraction)},${py(c.accuracy)}`);
    });
    out.push(`<polyline points="${points.join(" ")}" fill="none" stroke="#555" stroke-dasharray="4 3"/>`);
  }
  for (const c of cells) {
    const tip = `${c.policy}: accuracy ${c.accuracy.toFixed(3)}, KV ${(c.kv_fraction * 100).toFixed(1)}% of full, admitted ${c.admitted_fraction.toFixed(3)}`;
    out.push(`<circle cx="${px(c.kv_fraction)}" cy="${py(c.accuracy)}" r="5" fill="${color(c.policy)}" fill-opacity="0.85"><title>${escapeXml(tip)}</title></circle>`);
  }
  return out.join("\n");
}

/** Cells not dominated by another (less or equal memory and more accuracy, or less memory and equal accuracy), by memory. */
export function paretoFrontier(cells: readonly CellResult[]): CellResult[] {
  const sorted = [...cells].sort((a, b) => a.kv_fraction - b.kv_fraction || b.accuracy - a.accuracy);
  const frontier: CellResult[] = [];
  for (const c of sorted) if (frontier.length === 0 || c.accuracy > frontier[frontier.length - 1].accuracy) frontier.push(c);
  return frontier;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
