/**
 * @module backends/webgpu/kernels/decodeTwoPassKernel
 *
 * Paged attention for blocks of few query vectors (decode), shaped so that
 * each key costs few instructions: the same work items, visibility rule and
 * partial rows as attentionKernels.ts (its reduce pass finishes the job),
 * taken in chunks of 128 keys (or 256: two per invocation, which measured
 * slower on the H200), each in two passes.
 *
 * - Scores: one invocation per key reads its K row (vec4 loads, each
 *   part's issued before its math; halves on GPUs) and dots it with every
 *   query, which sit in workgroup memory (a broadcast read): no shuffles, no per-lane
 *   bookkeeping repeated across a team. The chunk's max (subgroupMax, then
 *   across subgroups) moves the running max; each invocation turns its
 *   key's scores into weights and keeps its own running sum.
 * - Values: teams of VL invocations (a team reads one V row, VL x 16 bytes)
 *   take the chunk's keys in turn, a batch of V rows loaded before their
 *   math (8 measured best: 1 was no faster than the team kernel, 16 ran
 *   out of registers), and accumulate weight x value; the accumulators are
 *   rescaled once per chunk, not once per key. With `zeroHidden` a key
 *   hidden from every query is marked in the scores pass and its V row
 *   taken as zeros, so each value enters by one FMA a query (a slot an
 *   earlier owner left may hold inf: 0 x inf is NaN, hence else a select).
 *
 * Workgroup arrays that pass a chunk's weights and rows between the passes
 * come in one set (three barriers a chunk; the default on GPUs: half the
 * workgroup memory, measured faster on the H200) or two alternating by chunk
 * parity (two barriers). Page ids come into workgroup memory `segTiles`
 * tiles at a time, as in decodeAttentionKernel.ts.
 *
 * Needs: subgroups of a fixed size SG with VL <= SG (rows of whole vec4s:
 * headDim x page bytes divisible by 16, at most SG x 16 bytes); 16 keys per tile.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";
import { IT_PARTIAL, RING_VISIBILITY_WGSL } from "./attentionKernels.js";
import { DECODE_BINDINGS_WGSL, DECODE_ITEM_WGSL, type DecodeBlockShape, KEY_PLACE_WGSL, SEG, segPagesWgsl, widenChunk } from "./decodeCommon.js";
import { kernelOf, MAIN_ARGS, memoKernel, range } from "./wgslCommon.js";

export interface TwoPassShape extends DecodeBlockShape {
  /** V rows a team loads before their math (a power of two): more bytes in flight, more registers. */
  readonly valueLoads: number;
  /** Keys each invocation scores per chunk (1 or 2; a chunk is 128 x this many keys). */
  readonly keysPerInvocation: number;
  /** Parts a K row's loads come in, each part's math before the next part's loads (1: the whole row in flight; more: fewer registers). */
  readonly keyParts?: number;
  /** Sets of the arrays that pass a chunk between the passes (2: by chunk parity, two barriers a chunk; 1: three, less workgroup memory). */
  readonly chunkBuffers?: number;
  /** Key tiles whose page ids sit in workgroup memory at once (default SEG). */
  readonly segTiles?: number;
  /**
   * A key hidden from every query of the block has its V row taken as zeros (its row marked in the scores pass),
   * so every other key's value enters as p x v, one FMA (false: each query's product is selected by p > 0).
   */
  readonly zeroHidden?: boolean;
}

const NT = 128;

/** Whether the two-pass kernel takes this shape with subgroups of `subgroupSize`. */
export function twoPassApplies(headDim: number, kvDType: KvDType, subgroupSize: number): boolean {
  const rowBytes = headDim * (kvDType === "f32" ? 4 : 2);
  const vl = rowBytes / 16;
  return subgroupSize > 0 && NT % subgroupSize === 0 && Number.isInteger(vl) && vl <= subgroupSize && NT % vl === 0 && headDim % 4 === 0;
}

/** Workgroup memory the kernel of this shape declares (bytes). */
export function twoPassSharedBytes(s: TwoPassShape): number {
  const NSG = NT / s.subgroupSize, CK = NT * s.keysPerInvocation, B = s.chunkBuffers ?? 2;
  return 4 * (s.numQueries * s.headDim + (s.segTiles ?? SEG) + B * NSG * s.numQueries + Math.max(B * s.numQueries * CK, s.numQueries * s.headDim) + B * CK + NSG * s.numQueries);
}

/**
 * args: numItems, Hq, Hkv, vBase (words), scale (f32), firstPage, then items at word 8.
 * Bindings as attentionKernel's: q, kFresh, vFresh f32; pool (as vec4<u32>); tables; flags; scratch.
 */
export const decodeTwoPassKernel = memoKernel(function decodeTwoPassKernel(s: TwoPassShape): Kernel {
  const { headDim: D, group: G, numQueries: NQ, kvDType, subgroupSize: SG } = s;
  if (!twoPassApplies(D, kvDType, SG)) throw new Error(`two-pass attention: head dim ${D} ${kvDType} does not fit subgroups of ${SG}`);
  const half = kvDType !== "f32";
  const V4 = (D * (half ? 2 : 4)) / 16; // vec4<u32> per row
  const VL = V4; // invocations per V row in the values pass
  const KG = NT / VL; // keys the values pass takes at once
  const C = half ? 2 : 1; // vec4<f32> chunks per vec4<u32>
  const NSG = NT / SG;
  const D4 = D / 4;
  const Q = range(NQ), CH = range(C), U = range(s.keysPerInvocation);
  const CK = NT * s.keysPerInvocation; // keys per chunk
  const VB = Math.min(s.valueLoads, CK / KG); // V rows a team loads at once
  const B = s.chunkBuffers ?? 2, ST = s.segTiles ?? SEG;
  if ((B !== 1 && B !== 2) || !(Number.isInteger(ST) && ST >= 1)) throw new Error(`two-pass attention: ${B} chunk buffers, ${ST} page ids at once`);
  // NOTE: parts of whole words: the most that divide the row, up to those asked for
  let KP = Math.max(1, Math.min(s.keyParts ?? 1, V4));
  while (V4 % KP !== 0) KP--;
  const ZH = s.zeroHidden ?? false;
  const PART = range(KP).map((p) => range(V4 / KP).map((i) => p * (V4 / KP) + i));
  const widen = (w: string, c: number) => widenChunk(kvDType, w, c);
  const f4 = (arr: string, at: string) => `vec4<f32>(${arr}[${at}], ${arr}[${at} + 1u], ${arr}[${at} + 2u], ${arr}[${at} + 3u])`;
  // the lane's part of the chunk's own (f32) value row of V batch entry u
  const freshValues = (u: number, indent: string) => CH.map((c) => `${indent}v${c} = ${f4("vf", `(r${u} & ~FRESH) + lane * ${4 * C}u + ${4 * c}u`)};`).join("\n");
  return kernelOf(`decode attention two-pass d${D} g${G} q${NQ} v${VB} k${s.keysPerInvocation} p${KP} b${B} s${ST}${ZH ? " zh" : ""} ${kvDType}`, ["ro", "ro", "ro", "ro", "ro", "ro", "rw"], /* wgsl */ `enable subgroups;
${DECODE_BINDINGS_WGSL}
const D = ${D}u;
const G = ${G}u;
const TK = 16u;
const MASKED = -3.0e38;
const FRESH = 0x80000000u;
const HIDDEN = 0xffffffffu; // no chunk key's row: theirs are multiples of D with FRESH set
var<workgroup> qs: array<vec4<f32>, ${NQ * D4}>;
var<workgroup> segPages: array<u32, ${ST}>;
// by chunk parity (B sets): each subgroup's max per query, each key's weight per query, each key's row;
// after the last chunk \`weights\` holds the merge's sums (NQ x D)
var<workgroup> chunkMax: array<f32, ${B * NSG * NQ}>;
var<workgroup> weights: array<f32, ${Math.max(B * NQ * CK, NQ * D)}>;
var<workgroup> rows: array<u32, ${B * CK}>;
var<workgroup> lSum: array<f32, ${NSG * NQ}>;
${RING_VISIBILITY_WGSL}
${KEY_PLACE_WGSL}

@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
${DECODE_ITEM_WGSL}
  let sg = lid / ${SG}u;
  // ---- the block's queries into workgroup memory (a query past nv repeats the last)
  for (var e = lid; e < ${NQ * D4}u; e += ${NT}u) {
    let v = min(e / ${D4}u, nv - 1u);
    let qb = ((row0 + qr0 + v / G) * Hq + g * G + v % G) * D + (e % ${D4}u) * 4u;
    qs[e] = ${f4("q", "qb")};
  }
${Q.map((v) => `  var m${v} = MASKED; var l${v} = 0.0;\n${CH.map((c) => `  var a${v}_${c} = vec4<f32>(0.0);`).join("\n")}`).join("\n")}
  let lane = lid % ${VL}u; let kg = lid / ${VL}u;
  var par = 0u;
  for (var seg = tile0; seg < tile1; seg += ${ST}u) {
  let segEnd = min(seg + ${ST}u, tile1);
  // NOTE: no barrier before: every scores pass that read segPages ended before the last chunk's first barrier
${segPagesWgsl(NT)}
  workgroupBarrier();
  for (var c0 = seg * 16u; c0 < segEnd * 16u; c0 += ${CK}u) {
    // ---- scores: keys c0 + lid + NT * u, where they live, their K rows (every load before the math),
    // their score for each query (masked by the rule)
${U.map((u) => `    let tl${u} = (c0 + lid + ${NT * u}u) / 16u; let j${u} = lid % 16u;
    let place${u} = keyPlace(tl${u}, ringTiles, globalTiles, numRing, nG, T);
    let kind${u} = place${u}.x; let first${u} = place${u}.y; let count${u} = place${u}.z;
    let ok${u} = tl${u} < segEnd && j${u} < count${u};
    let t${u} = first${u} + j${u};
    let k4_${u} = ((select(firstPage, segPages[min(tl${u} - seg, ${ST - 1}u)], ok${u}) - firstPage) * 16u + t${u} % 16u) * ${V4}u;
    let fb${u} = ((row0 + min(t${u}, T - 1u)) * Hkv + g) * D;
${Q.map((v) => `    var d${u}_${v} = 0.0;`).join("\n")}`).join("\n")}
${PART.map((part) => `${U.map((u) => part.map((i) => `    let w${u}_${i} = pool[k4_${u} + ${i}u];`).join("\n")).join("\n")}
${U.map((u) => part.map((i) => CH.map((c) => `    { let k = ${widen(`w${u}_${i}`, c)};${Q.map((v) => ` d${u}_${v} += dot(qs[${v * D4 + i * C + c}u], k);`).join("")} }`).join("\n")).join("\n")).join("\n")}`).join("\n")}
${U.map((u) => `    // NOTE: the chunk's own keys (f32, not in a page) in a branch: select() would read them for every key
    if (kind${u} == 2u) {
${Q.map((v) => `      d${u}_${v} = 0.0;`).join("\n")}
      for (var i = 0u; i < ${D4}u; i++) {
        let k = ${f4("kf", `fb${u} + 4u * i`)};
${Q.map((v) => `        d${u}_${v} += dot(qs[${v * D4}u + i], k);`).join("\n")}
      }
    }
${Q.map((v) => `    var vis${u}_${v} = ok${u} && ${v}u < nv;
    if (kind${u} == 0u) { vis${u}_${v} = vis${u}_${v} && ringVisible(t${u}, P, W, P + qr0 + ${v}u / G, fl); }
    else if (kind${u} == 2u) { vis${u}_${v} = vis${u}_${v} && t${u} <= qr0 + ${v}u / G; }
    let s${u}_${v} = select(MASKED, d${u}_${v} * scale, vis${u}_${v});`).join("\n")}
    rows[par * ${CK}u + lid + ${NT * u}u] = ${ZH ? `select(select(k4_${u}, FRESH | fb${u}, kind${u} == 2u), HIDDEN, !(${Q.map((v) => `vis${u}_${v}`).join(" || ")}))` : `select(k4_${u}, FRESH | fb${u}, kind${u} == 2u)`};`).join("\n")}
${Q.map((v) => `    {
      let sm = subgroupMax(${U.map((u) => `s${u}_${v}`).reduce((x, y) => `max(${x}, ${y})`)});
      if (lid % ${SG}u == 0u) { chunkMax[par * ${NSG * NQ}u + sg * ${NQ}u + ${v}u] = sm; }
    }`).join("\n")}
    workgroupBarrier();
    // ---- the running max moves to the chunk's; these keys' weights; the accumulators rescale
${Q.map((v) => `    {
      var cm = MASKED;
      for (var i = 0u; i < ${NSG}u; i++) { cm = max(cm, chunkMax[par * ${NSG * NQ}u + i * ${NQ}u + ${v}u]); }
      let mn = max(m${v}, cm);
      let al = exp(m${v} - mn);
${U.map((u) => `      let p${u} = select(0.0, exp(s${u}_${v} - mn), vis${u}_${v});
      weights[par * ${NQ * CK}u + ${v * CK}u + lid + ${NT * u}u] = p${u};`).join("\n")}
      l${v} = l${v} * al + ${U.map((u) => `p${u}`).join(" + ")};
${CH.map((c) => `      a${v}_${c} *= al;`).join("\n")}
      m${v} = mn;
    }`).join("\n")}
    workgroupBarrier();
    // ---- values: team kg takes keys kg, kg + KG, ... of the chunk, VB at a time, their loads before the math
    // (a hidden key's value never enters); NOTE: a trip count uniform across the workgroup
    for (var i0 = 0u; i0 < ${CK / KG}u; i0 += ${VB}u) {
${range(VB).map((u) => `      let r${u} = rows[par * ${CK}u + kg + ${KG}u * (i0 + ${u}u)];
      let vw${u} = pool[vBase4 + select(r${u}, 0u, r${u} >= FRESH) + lane];`).join("\n")}
${range(VB).map((u) => `      {
        let kk = kg + ${KG}u * (i0 + ${u}u);
${CH.map((c) => `        var v${c} = ${widen(`vw${u}`, c)};`).join("\n")}
        if (r${u} >= FRESH) {
${ZH ? `          if (r${u} == HIDDEN) {
${CH.map((c) => `            v${c} = vec4<f32>(0.0);`).join("\n")}
          } else {
${freshValues(u, "            ")}
          }` : freshValues(u, "          ")}
        }
${Q.map((v) => `        { let p = weights[par * ${NQ * CK}u + ${v * CK}u + kk];${CH.map((c) => (ZH ? ` a${v}_${c} = fma(vec4<f32>(p), v${c}, a${v}_${c});` : ` a${v}_${c} += select(vec4<f32>(0.0), p * v${c}, p > 0.0);`)).join("")} }`).join("\n")}
      }`).join("\n")}
    }
${B === 2 ? "    par ^= 1u;" : "    workgroupBarrier();"}
  }
  }
  // ---- merge: the teams of a subgroup by shuffles, then subgroups in order through workgroup memory
${range(Math.log2(SG / VL)).map((b) => `${Q.map((v) => CH.map((c) => `  a${v}_${c} += subgroupShuffleXor(a${v}_${c}, ${VL << b}u);`).join("\n")).join("\n")}`).join("\n")}
${Q.map((v) => `  { let ls = subgroupAdd(l${v}); if (lid % ${SG}u == 0u) { lSum[sg * ${NQ}u + ${v}u] = ls; } }`).join("\n")}
  // NOTE: the sums take the weights' space: every values pass that read it ends first
  workgroupBarrier();
  for (var e = lid; e < ${NQ * D}u; e += ${NT}u) { weights[e] = 0.0; }
  workgroupBarrier();
  for (var i = 0u; i < ${NSG}u; i++) {
    if (sg == i && lid % ${SG}u < ${VL}u) {
${Q.map((v) => CH.map((c) => `      { let at = ${v * D}u + lane * ${4 * C}u + ${4 * c}u; weights[at] += a${v}_${c}.x; weights[at + 1u] += a${v}_${c}.y; weights[at + 2u] += a${v}_${c}.z; weights[at + 3u] += a${v}_${c}.w; }`).join("\n")).join("\n")}
    }
    workgroupBarrier();
  }
  // ---- partial rows: max, sum, acc (the reduce pass of attentionKernels.ts reads them)
  let base = au(ib + ${IT_PARTIAL}u);
  if (lid < nv) {
    var M = MASKED; var L = 0.0;
${Q.map((v) => `    if (lid == ${v}u) { M = m${v}; }`).join("\n")}
    for (var i = 0u; i < ${NSG}u; i++) { L += lSum[i * ${NQ}u + lid]; }
    scratch[(base + lid) * (D + 2u)] = bitcast<u32>(M);
    scratch[(base + lid) * (D + 2u) + 1u] = bitcast<u32>(L);
  }
  for (var e = lid; e < nv * D; e += ${NT}u) { scratch[(base + e / D) * (D + 2u) + 2u + e % D] = bitcast<u32>(weights[e]); }
}`);
});
