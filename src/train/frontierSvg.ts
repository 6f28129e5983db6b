/**
 * @module train/frontierSvg
 *
 * The accuracy-memory frontier of trained gates as an SVG: one panel per
 * context length, NIAH accuracy against the admitted fraction, one colour per
 * series (e.g. this project's gates and the reference's), each series'
 * frontier (the points no other point of the series beats on both axes) as
 * a step line, and every point labelled.
 */

export interface FrontierPoint {
  readonly label: string;
  /** Admitted (layer, KV head, token) entries over all, in [0, 1]: one value, or one per context length. */
  readonly admitted: number | Readonly<Record<number, number>>;
  /** Accuracy per context length (e.g. { 4096: 0.95 }). */
  readonly accuracy: Readonly<Record<number, number>>;
}

export interface FrontierSeries {
  readonly name: string;
  readonly color: string;
  readonly dashed?: boolean;
  /** Drawn as points only, outside any frontier (baselines such as full attention). */
  readonly baseline?: boolean;
  readonly points: readonly FrontierPoint[];
}

/** Points not beaten on both axes by another (less or equal admitted, more accuracy), by admitted fraction. */
export function frontierOf(points: readonly { admitted: number; accuracy: number }[]): { admitted: number; accuracy: number }[] {
  const sorted = [...points].sort((a, b) => a.admitted - b.admitted || b.accuracy - a.accuracy);
  const out: { admitted: number; accuracy: number }[] = [];
  for (const p of sorted) if (out.length === 0 || p.accuracy > out[out.length - 1]!.accuracy) out.push(p);
  return out;
}

const PANEL = { width: 380, height: 300, left: 52, right: 14, top: 30, bottom: 42 };

export function frontierSvg(series: readonly FrontierSeries[], lengths: readonly number[], title: string): string {
  const legend = 22 * series.length + 34;
  const width = lengths.length * PANEL.width + 10, height = legend + PANEL.height;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const y = 38 + 22 * i;
    out.push(`<line x1="12" x2="36" y1="${y - 4}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
    out.push(`<circle cx="24" cy="${y - 4}" r="4" fill="${s.color}"/><text x="44" y="${y}">${esc(s.name)}</text>`);
  });
  lengths.forEach((len, col) => {
    const x0 = col * PANEL.width + 5, y0 = legend;
    const pw = PANEL.width - PANEL.left - PANEL.right, ph = PANEL.height - PANEL.top - PANEL.bottom;
    const px = (f: number) => x0 + PANEL.left + Math.min(1, Math.max(0, f)) * pw;
    const py = (a: number) => y0 + PANEL.top + (1 - Math.min(1, Math.max(0, a))) * ph;
    out.push(`<text x="${x0 + PANEL.left}" y="${y0 + 18}" font-weight="bold">NIAH @ ${len}</text>`);
    out.push(`<rect x="${px(0)}" y="${py(1)}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
      out.push(`<line x1="${px(0)}" x2="${px(1)}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><text x="${px(0) - 4}" y="${py(t) + 4}" text-anchor="end">${t.toFixed(1)}</text>`);
      out.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${py(0)}" y2="${py(1)}" stroke="#f3f3f3"/><text x="${px(t)}" y="${py(0) + 14}" text-anchor="middle">${t.toFixed(1)}</text>`);
    }
    out.push(`<text x="${px(0.5)}" y="${py(0) + 32}" text-anchor="middle">admitted fraction</text>`);
    out.push(`<text transform="translate(${x0 + 14} ${py(0.5)}) rotate(-90)" text-anchor="middle">accuracy</text>`);
    for (const s of series) {
      const pts = s.points
        .filter((p) => p.accuracy[len] !== undefined && (typeof p.admitted === "number" || p.admitted[len] !== undefined))
        .map((p) => ({ label: p.label, acc: p.accuracy[len]!, admitted: typeof p.admitted === "number" ? p.admitted : p.admitted[len]! }));
      if (!s.baseline) {
        const f = frontierOf(pts.map((p) => ({ admitted: p.admitted, accuracy: p.acc })));
        const line: string[] = [];
        f.forEach((p, i) => {
          if (i > 0) line.push(`${px(p.admitted)},${py(f[i - 1]!.accuracy)}`);
          line.push(`${px(p.admitted)},${py(p.accuracy)}`);
        });
        if (f.length > 0) line.push(`${px(1)},${py(f[f.length - 1]!.accuracy)}`);
        if (line.length > 1) out.push(`<polyline points="${line.join(" ")}" fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
      }
      for (const p of pts) {
        const tip = `${s.name} ${p.label}: admitted ${p.admitted.toFixed(3)}, accuracy ${p.acc.toFixed(3)}`;
        out.push(`<circle cx="${px(p.admitted).toFixed(1)}" cy="${py(p.acc).toFixed(1)}" r="4" fill="${s.color}" fill-opacity="0.85"><title>${esc(tip)}</title></circle>`);
        out.push(`<text x="${(px(p.admitted) + 6).toFixed(1)}" y="${(py(p.acc) - 5).toFixed(1)}" font-size="9" fill="${s.color}">${esc(p.label)}</text>`);
      }
    }
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
