/**
 * @module backends/webgpu/kernels/attentionDirectKernel
 *
 * Prefill attention on tensor cores for f16 pages, which are already the
 * tensor cores' operand type: each workgroup is one subgroup holding 16
 * query vectors, and loads its K and V fragments straight from the pool
 * (and from the chunk's own keys, made f16 once per call by
 * `chunkF16Kernel`), so the key loop stages nothing in workgroup memory
 * and shares nothing across subgroups: its barriers span one subgroup.
 * attentionSgKernel.ts (bf16 and f32 pages) converts every key in
 * workgroup memory for 64 query vectors, and its 27 KiB of it let an H200
 * SM run one workgroup at a time (design §5).
 *
 * Contract: attentionKernels.ts's work items, visibility rule and partial
 * rows; the online softmax and its lazy running max (sgAttentionWgsl.ts) as
 * attentionSgKernel.ts.
 *
 * Precision, split (the default): page keys and values are exact in f16,
 * so q and p are each split in two f16 and every product takes both halves
 * (two products per one); the chunk's own keys and values are f32 and are
 * split too, adding the third term (q hi x k lo, p hi x v lo). Unsplit,
 * every operand is rounded once to f16.
 *
 * Stale slots: a tile's fragments span 16 keys even where fewer are valid
 * (the last ring, global or chunk tile). Scores of invalid keys are masked
 * by select, but 0 x inf in P V would be NaN, so the values of such tiles
 * pass through workgroup memory with zeros past the valid keys: slots a
 * page's earlier owner left, or rows of the next sequence, never reach the
 * output.
 *
 * Workgroup memory: ~2-3 KiB. On the H200 it bounds how many of these
 * workgroups an SM runs at once, and with them the time (8, 16 and 32 KiB
 * more, unused, made it 1.9, 2.6 and 4.8x slower;
 * scripts/device/prefill-attention-bench.mjs): queries and short tiles'
 * values pass through P's space one fragment at a time.
 */
import type { Kernel } from "../gpuRuntime.js";
import { CHUNK_VISIBILITY_WGSL, IT_PARTIAL, ITEM_FIELDS_WGSL, PAGE_OF_WGSL, RING_VISIBILITY_WGSL } from "./attentionKernels.js";
import type { SgMatrixDialect } from "./matmulSgKernels.js";
import { F16_SPLIT_WGSL, SgMatrixWgsl } from "./sgMatrixWgsl.js";
import { keyModesWgsl, partialRowsWgsl, softmaxStepWgsl, TILE_OF_WGSL } from "./sgAttentionWgsl.js";
import { MAIN_ARGS, WG_INDEX, kernelOf, memoKernel, range } from "./wgslCommon.js";

/** Query vectors per workgroup (one subgroup). */
export const DIRECT_ATTENTION_QUERIES = 16;

export interface DirectAttentionShape {
  readonly headDim: number;
  readonly group: number;
  /** Keys per step: 16 or 32. */
  readonly stepKeys: number;
  /** q and p (and the chunk's own keys) as two f16 each; else rounded once. */
  readonly split: boolean;
}

/** Whether the kernel takes this shape (f16 pages only: the caller checks). */
export function directAttentionApplies(headDim: number, group: number): boolean {
  return headDim % 16 === 0 && headDim <= 128 && group <= DIRECT_ATTENTION_QUERIES;
}

/** Elements of each of the four parts (K hi, K lo, V hi, V lo) of the chunk's f16 copy for `rows` batch rows: 16 rows of padding, so a tile's fragment never reads past it. */
export function chunkF16PartElements(rows: number, numKvHeads: number, headDim: number): number {
  return (rows + 16) * numKvHeads * headDim;
}

/**
 * k, v f32 [rows, Hkv * D] -> f16 [4][part]: K high halves, K low, V high, V low (F16_SPLIT_WGSL), two per word.
 * args: words of one part's rows (rows * Hkv * D / 2), words of a part (chunkF16PartElements / 2)
 */
export const chunkF16Kernel = memoKernel(function chunkF16Kernel(): Kernel {
  return kernelOf("chunk keys f16", ["rw", "ro", "ro"], /* wgsl */ `enable f16;
@group(0) @binding(0) var<storage, read_write> out: array<vec2<f16>>;
@group(0) @binding(1) var<storage, read> k: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<f32>>;
${F16_SPLIT_WGSL}
fn hi2(x: vec2<f32>) -> vec2<f16> { return vec2<f16>(toF16(x.x), toF16(x.y)); }
fn lo2(x: vec2<f32>) -> vec2<f16> { return vec2<f16>(lowF16(x.x), lowF16(x.y)); }
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid; let n = au(1u);
  if (i >= au(0u)) { return; }
  let a = k[i]; let b = v[i];
  out[i] = hi2(a); out[n + i] = lo2(a); out[2u * n + i] = hi2(b); out[3u * n + i] = lo2(b);
}`);
});

/**
 * args (as attentionKernels.ts attentionKernel's): 0 items, 1 Hq, 2 Hkv, 3 vBase (pool words), 4 scale (f32),
 * 5 the part's first page, 6 lazy max (f32), 7 elements of a part of the chunk's copy.
 * Bindings: q f32, the chunk's f16 copy (chunkF16Kernel), the pool part as f16, tables, flags, scratch.
 */
export const directAttentionKernel = memoKernel(function directAttentionKernel(s: DirectAttentionShape, dialect: SgMatrixDialect): Kernel {
  const { headDim: D, group: G, stepKeys: KT, split } = s;
  if (!directAttentionApplies(D, G) || (KT !== 16 && KT !== 32)) throw new Error(`tensor-core attention (f16 pages): head dim ${D}, group ${G}, ${KT} keys per step do not fit`);
  const NQ = DIRECT_ATTENTION_QUERIES, NT = 32;
  const [DF, KF] = [D / 16, KT / 16];
  const ops = new SgMatrixWgsl(dialect.syntax);
  const parts = split ? 2 : 1;
  // NOTE: terms [q or p part, k or v part]: pages hold one part; the chunk's copy two (split)
  const pageTerms = range(parts).map((a) => [a, 0]);
  const chunkTerms = split ? [[0, 0], [1, 0], [0, 1]] : [[0, 0]];
  // a fragment of the tile's keys (K^T, column-major) or values (row-major), part b
  const kPage = (i: number) => ops.load("right", "pool", `kAt + ${i * 16}u`, true, `${D}u`);
  const kChunk = (b: number, i: number) => ops.load("right", "chunk", `kAt + ${b === 0 ? "" : "cn + "}${i * 16}u`, true, "rowStride");
  const vPage = (i: number) => ops.load("right", "pool", `vAt + ${i * 16}u`, false, `${D}u`);
  const vChunk = (b: number, i: number) => ops.load("right", "chunk", `vAt + ${b === 0 ? "" : "cn + "}${i * 16}u`, false, "rowStride");
  const scoreSum = (terms: number[][], k: (b: number, i: number) => string) =>
    range(DF)
      .flatMap((i) => terms.map(([a, b]) => `        sc = ${ops.mma(`q${a}_${i}`, k(b, i), "sc")};`))
      .join("\n");
  const pvSum = (j: number, terms: number[][], v: (b: number, i: number) => string) =>
    range(DF)
      .flatMap((i) => terms.map(([a, b]) => `        o${i} = ${ops.mma(`p${a}_${j}`, v(b, i), `o${i}`)};`))
      .join("\n");
  // NOTE: a tile with fewer than 16 valid keys: each values fragment through ps (zeros past the keys), one at a time
  const pvStaged = (j: number, terms: number[][]) =>
    range(DF)
      .flatMap((i) =>
        [...new Set(terms.map(([, b]) => b))].map(
          (b) => `        workgroupBarrier();
        stageValues(kind, vAt + ${b === 0 ? "" : "cn + "}${i * 16}u);
        workgroupBarrier();
        { let vs = ${ops.load("right", "ps", "0u", false, "16u")};
${terms
  .filter(([, bb]) => bb === b)
  .map(([a]) => `          o${i} = ${ops.mma(`p${a}_${j}`, "vs", `o${i}`)};`)
  .join("\n")}
        }
        workgroupBarrier();`,
        ),
      )
      .join("\n");
  const scores = range(KF)
    .map(
      (j) => `    {
      let kind = kinds[${j}];
      let kAt = ats[${j}].x;
      var sc = ${ops.zero()};
      if (kind.x == 1u) {
${scoreSum(pageTerms, (_b, i) => kPage(i))}
      } else if (kind.x == 2u) {
${scoreSum(chunkTerms, kChunk)}
      }
      ${ops.store("ss", `${j * 16}u`, "sc", `${KT}u`)};
    }`,
    )
    .join("\n");
  const pv = range(KF)
    .map(
      (j) => `    {
      let kind = kinds[${j}];
      let vAt = ats[${j}].y;
      if (kind.x == 1u && kind.y == 16u) {
${pvSum(j, pageTerms, (_b, i) => vPage(i))}
      } else if (kind.x == 2u && kind.y == 16u) {
${pvSum(j, chunkTerms, vChunk)}
      } else if (kind.x == 1u) {
${pvStaged(j, pageTerms)}
      } else if (kind.x == 2u) {
${pvStaged(j, chunkTerms)}
      }
    }`,
    )
    .join("\n");
  // NOTE: the queries go to registers one fragment at a time through ps, high halves then low
  const queries = range(parts)
    .flatMap((part) =>
      range(DF).map(
        (i) => `  for (var e = lid; e < 256u; e += ${NT}u) {
    let v = e / 16u;
    var x = 0.0;
    if (v < nv) { x = q[((row0 + qr0 + v / G) * Hq + g * G + v % G) * D + ${i * 16}u + e % 16u]; }
    ps[e] = ${part === 0 ? "toF16(x)" : "lowF16(x)"};
  }
  workgroupBarrier();
  let q${part}_${i} = ${ops.load("left", "ps", "0u", false, "16u")};
  workgroupBarrier();`,
      ),
    )
    .join("\n");
  const place = { q0: "0u", lane: "lid", at: "0u" };
  return kernelOf(`paged attention direct d${D} g${G} k${KT}${split ? " split" : ""}${dialect.syntax === "emulated" ? " emulated" : ""}`, ["ro", "ro", "ro", "ro", "ro", "rw"], /* wgsl */ `${ops.enables(dialect.nonUniform)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> chunk: array<f16>;
@group(0) @binding(2) var<storage, read> pool: array<f16>;
@group(0) @binding(3) var<storage, read> tables: array<i32>;
@group(0) @binding(4) var<storage, read> flags: array<u32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<u32>;
const D = ${D}u;
const G = ${G}u;
const TK = 16u;
const KT = ${KT}u;
const MASKED = -3.0e38;
// NOTE: scores, and P (split: high halves, then low), through which the queries and short tiles' values also pass
var<workgroup> ss: array<f32, ${Math.max(NQ * KT, 256)}>;
var<workgroup> ps: array<f16, ${Math.max(parts * NQ * KT, 256)}>;
var<workgroup> mrow: array<f32, ${NQ}>;
var<workgroup> lrow: array<f32, ${NQ}>;
var<workgroup> arow: array<f32, ${NQ}>;
var<workgroup> pairs: array<f32, ${NT}>;
// NOTE: every workgroup variable a multiple of 16 bytes (attentionSgKernel.ts: the H200 gave garbage otherwise)
var<workgroup> rescale: array<u32, 4>;
var<workgroup> uniformWord: array<u32, 4>;
var<workgroup> kmode: array<u32, ${KT}>;
var<workgroup> kposs: array<u32, ${KT}>;
${RING_VISIBILITY_WGSL}
${CHUNK_VISIBILITY_WGSL}
${PAGE_OF_WGSL}
${F16_SPLIT_WGSL}
${TILE_OF_WGSL}
/** 16 x 16 values of a tile (kind: source, valid keys) from element \`at\` into ps, zeros past its valid keys. */
fn stageValues(kind: vec2<u32>, at: u32) {
  let fromChunk = kind.x == 2u;
  let stride = select(D, au(2u) * D, fromChunk);
  for (var e = lid_; e < 256u; e += ${NT}u) {
    let j = e / 16u; let c = e % 16u;
    var x = f16(0.0);
    if (j < kind.y) {
      if (fromChunk) { x = chunk[at + j * stride + c]; } else { x = pool[at + j * stride + c]; }
    }
    ps[e] = x;
  }
}
var<private> lid_: u32;
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  lid_ = lid;
  let Hq = au(1u); let Hkv = au(2u); let scale = af(4u); let vBase = au(3u) * 2u; let lazyMax = af(6u); let cn = au(7u);
  let rowStride = Hkv * D;
${ITEM_FIELDS_WGSL}
  let nv = qn * G;
  if (lid < ${NQ}u) { mrow[lid] = MASKED; lrow[lid] = 0.0; }
  if (lid == 0u) { rescale[0] = 0u; }
  // ---- the block's query vectors, as f16 fragments held for the whole item
${queries}
${range(DF).map((i) => `  var o${i} = ${ops.zero()};`).join("\n")}
  // NOTE: the item's global count through workgroup memory: read from scratch (Quest), it is not uniform to WGSL,
  // and the tiles' kinds, which branches with barriers follow, derive from it
  if (lid == 0u) { uniformWord[0] = nG; }
  let nGu = workgroupUniformLoad(&uniformWord[0]);
  let gTiles = (nGu + TK - 1u) / TK;
  // NOTE: per tile of the step: source (0 none, 1 page, 2 the chunk's copy) and valid keys; K and V elements
  var kinds: array<vec2<u32>, ${KF}>;
  var ats: array<vec2<u32>, ${KF}>;
  for (var tile = tile0; tile < tile1; tile += ${KF}u) {
    // ---- where each tile's keys are; each key's visibility rule (sgAttentionWgsl.ts)
    for (var j = 0u; j < ${KF}u; j++) {
      let tj = tile + j;
      kinds[j] = vec2<u32>(0u);
      if (tj < tile1) {
        let tl = tileOf(tj, ringTiles, gTiles, numRing, nGu, T);
        kinds[j] = vec2<u32>(select(1u, 2u, tl.x == 2u), tl.z);
        if (tl.x == 2u) { let at = (row0 + tl.y) * rowStride + g * D; ats[j] = vec2<u32>(at, 2u * cn + at); }
        else { let at = (pageOf(tl.x, tl.y, tab, W, quest) - au(5u)) * 16u * D; ats[j] = vec2<u32>(at, vBase + at); }
      }
    }
${keyModesWgsl("gTiles", "nGu")}
    // ---- the 16 x KT scores
${scores}
    workgroupBarrier();
    // ---- masked and scaled, two lanes per query vector (keys [h KT/2, (h + 1) KT/2), skewed by v against bank conflicts)
${softmaxStepWgsl(ops, place, { NQ, KT, DF, split, skew: true })}
    // ---- O += P V (every tile's P first: a short tile's values pass through ps)
${range(KF)
  .flatMap((j) => range(parts).map((a) => `    let p${a}_${j} = ${ops.load("left", "ps", `${a * NQ * KT + j * 16}u`, false, `${KT}u`)};`))
  .join("\n")}
${pv}
  }
  // ---- partial rows: max, sum, acc
${partialRowsWgsl(ops, place, DF, `${IT_PARTIAL}`)}
}
${ops.helpers()}`);
});
