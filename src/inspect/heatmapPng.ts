/**
 * @module inspect/heatmapPng
 *
 * The heat map of admitted fractions (rows: layers, columns: KV heads) as a
 * PNG, in the page's colours: RGBA pixels, zlib through the web-standard
 * CompressionStream (Node 18+ and browsers), and PNG's chunks with CRC-32.
 */

const CELL = 32;
const GAP = 2;

/** The page's scale: near-white for 0, deep blue for 1. */
export function heatColour(f: number): [number, number, number] {
  const a = [247, 247, 244], b = [20, 110, 160];
  return a.map((x, i) => Math.round(x + (b[i] - x) * Math.min(1, Math.max(0, f)))) as [number, number, number];
}

/** fractions[layer][head] in [0, 1] → PNG bytes, one CELL-pixel square per (layer, head). */
export async function heatmapPng(fractions: readonly (readonly number[])[]): Promise<Uint8Array> {
  const rows = fractions.length, cols = fractions[0]?.length ?? 0;
  const width = cols * (CELL + GAP) + GAP, height = rows * (CELL + GAP) + GAP;
  // each scanline: a filter byte (0: none), then RGBA
  const raw = new Uint8Array(height * (1 + width * 4));
  for (let y = 0; y < height; y++) {
    const line = y * (1 + width * 4);
    for (let x = 0; x < width; x++) {
      const r = Math.floor((y - GAP) / (CELL + GAP)), c = Math.floor((x - GAP) / (CELL + GAP));
      const inCell = y >= GAP && x >= GAP && (y - GAP) % (CELL + GAP) < CELL && (x - GAP) % (CELL + GAP) < CELL && r < rows && c < cols;
      const [R, G, B] = inCell ? heatColour(fractions[r][c]) : [255, 255, 255];
      raw.set([R, G, B, 255], line + 1 + x * 4);
    }
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, no filter, no interlace
  const idat = await deflate(raw);
  return concat([Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))]);
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
