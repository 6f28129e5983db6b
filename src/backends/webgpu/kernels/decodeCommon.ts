/**
 * @module backends/webgpu/kernels/decodeCommon
 *
 * What the two decode attention kernels (decodeAttentionKernel.ts, the
 * team per key; decodeTwoPassKernel.ts, scores then values) share: their
 * shape's common fields, bindings and start of `main`, where a key of the
 * logical list (ring, global, chunk) lives, the item's page ids brought into workgroup memory a segment
 * at a time, and the widening of a vec4 of page words to f32. Both see the chunk's own keys causally
 * only: a chunk that reads them by the step's admit flags never comes here (attentionPlan.ts chunkByFlags).
 */
import type { KvDType } from "../../backend.js";
import { ITEM_FIELDS_WGSL } from "./attentionKernels.js";
import { WG_INDEX } from "./wgslCommon.js";

/** The fields of a decode kernel's shape both kernels have. */
export interface DecodeBlockShape {
  readonly headDim: number;
  readonly group: number;
  readonly kvDType: KvDType;
  /** Query vectors per item at most (rows of a block x group). */
  readonly numQueries: number;
  /** The device's subgroup size (fixed: its minimum and maximum agree). */
  readonly subgroupSize: number;
}

/**
 * Both kernels' bindings (as attentionKernels.ts's, the pool as vec4 words):
 * q, kFresh, vFresh f32; pool; block tables; ring flags; scratch.
 */
export const DECODE_BINDINGS_WGSL = /* wgsl */ `@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kf: array<f32>;
@group(0) @binding(2) var<storage, read> vf: array<f32>;
@group(0) @binding(3) var<storage, read> pool: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> tables: array<i32>;
@group(0) @binding(5) var<storage, read> flags: array<u32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<u32>;`;

/**
 * The start of both kernels' `main`: past the last item, return; the
 * arguments (numItems, Hq, Hkv, vBase, scale, firstPage), the item's fields
 * (ITEM_FIELDS_WGSL) and nv, its query vectors. Needs the kernel's `G`.
 */
export const DECODE_ITEM_WGSL = /* wgsl */ `  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let Hq = au(1u); let Hkv = au(2u); let vBase4 = au(3u) / 4u; let scale = af(4u); let firstPage = au(5u);
${ITEM_FIELDS_WGSL}
  let nv = qn * G;`;

/** Key tiles whose page ids sit in workgroup memory at once. */
export const SEG = 256;

/**
 * `fn keyPlace(tl) -> vec3u`: where key tile tl of an item's logical list
 * lies: (kind: 0 ring, 1 global, 2 the chunk's own keys; the kind's first
 * token of the tile; the tile's keys). Needs the item's fields (ITEM_FIELDS_WGSL).
 */
export const KEY_PLACE_WGSL = /* wgsl */ `
fn keyPlace(tl: u32, ringTiles: u32, globalTiles: u32, numRing: u32, nG: u32, T: u32) -> vec3u {
  if (tl < ringTiles) { return vec3u(0u, tl * 16u, min(16u, numRing - tl * 16u)); }
  if (tl < ringTiles + globalTiles) { let first = (tl - ringTiles) * 16u; return vec3u(1u, first, min(16u, nG - first)); }
  let first = (tl - ringTiles - globalTiles) * 16u;
  return vec3u(2u, first, select(0u, min(16u, T - first), T > first));
}`;

/**
 * The page ids of tiles [seg, segEnd) into `segPages` (declared by the
 * kernel, SEG entries), `nt` invocations striding: ring and global tiles
 * from the block table (or Quest's choice in scratch), the chunk's own
 * tiles the part's first page (read, never used).
 */
export function segPagesWgsl(nt: number): string {
  return /* wgsl */ `  for (var i = lid; i < segEnd - seg; i += ${nt}u) {
    let tl = seg + i;
    var pg = firstPage;
    if (tl < ringTiles) { pg = u32(tables[tab + tl]); }
    else if (tl < ringTiles + globalTiles) {
      if (quest != 0xffffffffu) { pg = scratch[quest + tl - ringTiles]; } else { pg = u32(tables[tab + W / 16u + tl - ringTiles]); }
    }
    segPages[i] = pg;
  }`;
}

/**
 * WGSL: chunk c (4 elements) of vec4<u32> page words `w`, as f32: 16-bit
 * pages hold two chunks per vec4 (its x, y words, then z, w), f32 pages one.
 */
export function widenChunk(kvDType: KvDType, w: string, c: number): string {
  if (kvDType === "f32") return `bitcast<vec4<f32>>(${w})`;
  const [a, b] = c % 2 === 0 ? [`${w}.x`, `${w}.y`] : [`${w}.z`, `${w}.w`];
  return kvDType === "f16"
    ? `vec4<f32>(unpack2x16float(${a}), unpack2x16float(${b}))`
    : `vec4<f32>(bitcast<f32>(${a} << 16u), bitcast<f32>(${a} & 0xffff0000u), bitcast<f32>(${b} << 16u), bitcast<f32>(${b} & 0xffff0000u))`;
}
