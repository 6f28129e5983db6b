/**
 * @module backends/webgpu/kernels/decodeOverlapKernel
 *
 * The two-pass decode attention (decodeTwoPassKernel.ts: its chunks of 128
 * keys, scores then values, the same bits) with its passes on different
 * invocations at once: of a workgroup of 256, the first 128 score chunk c
 * (one key each) while the other 128 accumulate chunk c - 1's values, so
 * that K rows and V rows are in flight together; in the two-pass kernel the
 * whole workgroup waits on a chunk's K loads, then on its V loads.
 *
 * A chunk takes two barriers: after the scores (each scoring subgroup's max
 * in workgroup memory) and after the weights (the running max moved, the
 * factor that rescales the value accumulators kept for the value side).
 * Arrays alternate by chunk parity, so the value side reads chunk c - 1's
 * weights and rows while the scoring side writes chunk c's. The value side
 * takes the last chunk after the loop.
 *
 * Needs what the two-pass kernel needs (twoPassApplies), 256 invocations a workgroup.
 */
import type { Kernel } from "../gpuRuntime.js";
import { IT_PARTIAL, RING_VISIBILITY_WGSL } from "./attentionKernels.js";
import { DECODE_BINDINGS_WGSL, DECODE_ITEM_WGSL, type DecodeBlockShape, KEY_PLACE_WGSL, SEG, segPagesWgsl, widenChunk } from "./decodeCommon.js";
import { twoPassApplies } from "./decodeTwoPassKernel.js";
import { kernelOf, MAIN_ARGS, memoKernel, range } from "./wgslCommon.js";

export interface OverlapShape extends DecodeBlockShape {
  /** V rows a team loads before their math (a power of two). */
  readonly valueLoads: number;
}

/** Scoring invocations (one key each: a chunk), and as many on the value side. */
const NS = 128;

/** Workgroup memory the kernel of this shape declares (bytes). */
export function overlapSharedBytes(s: OverlapShape): number {
  const NSG = NS / s.subgroupSize;
  return 4 * (s.numQueries * s.headDim + SEG + 2 * NSG * s.numQueries + 2 * s.numQueries * NS + 2 * NS + 2 * s.numQueries + NSG * s.numQueries + s.numQueries * s.headDim);
}

/**
 * args: numItems, Hq, Hkv, vBase (words), scale (f32), firstPage, then items at word 8.
 * Bindings as attentionKernel's: q, kFresh, vFresh f32; pool (as vec4<u32>); tables; flags; scratch.
 */
export const decodeOverlapKernel = memoKernel(function decodeOverlapKernel(s: OverlapShape): Kernel {
  const { headDim: D, group: G, numQueries: NQ, kvDType, subgroupSize: SG } = s;
  if (!twoPassApplies(D, kvDType, SG)) throw new Error(`overlapped attention: head dim ${D} ${kvDType} does not fit subgroups of ${SG}`);
  const half = kvDType !== "f32";
  const V4 = (D * (half ? 2 : 4)) / 16; // vec4<u32> per row
  const VL = V4; // invocations per V row on the value side
  const KG = NS / VL; // keys the value side takes at once
  const C = half ? 2 : 1; // vec4<f32> chunks per vec4<u32>
  const NSG = NS / SG;
  const D4 = D / 4;
  const Q = range(NQ), CH = range(C);
  const VB = Math.min(s.valueLoads, NS / KG); // V rows a team loads at once
  const widen = (w: string, c: number) => widenChunk(kvDType, w, c);
  const f4 = (arr: string, at: string) => `vec4<f32>(${arr}[${at}], ${arr}[${at} + 1u], ${arr}[${at} + 2u], ${arr}[${at} + 3u])`;
  // WGSL: the value side's pass over the chunk of parity pp: accumulators rescaled by the chunk's factor, then
  // team kg takes keys kg, kg + KG, ..., VB at a time, their loads before the math (a hidden key's value never enters)
  const values = `    let pp = par ^ 1u;
${Q.map((v) => CH.map((c) => `    a${v}_${c} *= alpha[pp * ${NQ}u + ${v}u];`).join("\n")).join("\n")}
    for (var i0 = 0u; i0 < ${NS / KG}u; i0 += ${VB}u) {
${range(VB).map((u) => `      let r${u} = rows[pp * ${NS}u + kg + ${KG}u * (i0 + ${u}u)];
      let vw${u} = pool[vBase4 + select(r${u}, 0u, r${u} >= FRESH) + lane];`).join("\n")}
${range(VB).map((u) => `      {
        let kk = kg + ${KG}u * (i0 + ${u}u);
${CH.map((c) => `        var v${c} = ${widen(`vw${u}`, c)};`).join("\n")}
        if (r${u} >= FRESH) {
${CH.map((c) => `          v${c} = ${f4("vf", `(r${u} & ~FRESH) + lane * ${4 * C}u + ${4 * c}u`)};`).join("\n")}
        }
${Q.map((v) => `        { let p = weights[pp * ${NQ * NS}u + ${v * NS}u + kk];${CH.map((c) => ` a${v}_${c} += select(vec4<f32>(0.0), p * v${c}, p > 0.0);`).join("")} }`).join("\n")}
      }`).join("\n")}
    }`;
  return kernelOf(`decode attention overlapped d${D} g${G} q${NQ} v${VB} ${kvDType}`, ["ro", "ro", "ro", "ro", "ro", "ro", "rw"], /* wgsl */ `enable subgroups;
${DECODE_BINDINGS_WGSL}
const D = ${D}u;
const G = ${G}u;
const TK = 16u;
const MASKED = -3.0e38;
const FRESH = 0x80000000u;
var<workgroup> qs: array<vec4<f32>, ${NQ * D4}>;
var<workgroup> segPages: array<u32, ${SEG}>;
// by chunk parity: each scoring subgroup's max per query, each key's weight per query, each key's row, the factor per query
var<workgroup> chunkMax: array<f32, ${2 * NSG * NQ}>;
var<workgroup> weights: array<f32, ${2 * NQ * NS}>;
var<workgroup> rows: array<u32, ${2 * NS}>;
var<workgroup> alpha: array<f32, ${2 * NQ}>;
var<workgroup> lSum: array<f32, ${NSG * NQ}>;
var<workgroup> accSum: array<f32, ${NQ * D}>;
${RING_VISIBILITY_WGSL}
${KEY_PLACE_WGSL}

@compute @workgroup_size(${2 * NS}) fn main(${MAIN_ARGS}) {
${DECODE_ITEM_WGSL}
  let sg = lid / ${SG}u;
  let scoring = lid < ${NS}u;
  // ---- the block's queries into workgroup memory (a query past nv repeats the last)
  for (var e = lid; e < ${NQ * D4}u; e += ${2 * NS}u) {
    let v = min(e / ${D4}u, nv - 1u);
    let qb = ((row0 + qr0 + v / G) * Hq + g * G + v % G) * D + (e % ${D4}u) * 4u;
    qs[e] = ${f4("q", "qb")};
  }
${Q.map((v) => `  var m${v} = MASKED; var l${v} = 0.0;\n${CH.map((c) => `  var a${v}_${c} = vec4<f32>(0.0);`).join("\n")}`).join("\n")}
  let lane = lid % ${VL}u; let kg = (lid % ${NS}u) / ${VL}u;
  var par = 0u;
  var started = false;
  for (var seg = tile0; seg < tile1; seg += ${SEG}u) {
  let segEnd = min(seg + ${SEG}u, tile1);
  // NOTE: no barrier before: every scoring pass that read segPages ended before the last chunk's first barrier
${segPagesWgsl(2 * NS)}
  workgroupBarrier();
  for (var c0 = seg * 16u; c0 < segEnd * 16u; c0 += ${NS}u) {
${Q.map((v) => `    var s${v} = MASKED; var vis${v} = false;`).join("\n")}
    if (scoring) {
      // ---- scores: key c0 + lid, where it lives, its K row (every load before the math), its score for each query
      let tl = (c0 + lid) / 16u; let j = lid % 16u;
      let place = keyPlace(tl, ringTiles, globalTiles, numRing, nG, T);
      let kind = place.x; let t = place.y + j;
      let ok = tl < segEnd && j < place.z;
      let k4 = ((select(firstPage, segPages[min(tl - seg, ${SEG - 1}u)], ok) - firstPage) * 16u + t % 16u) * ${V4}u;
      let fb = ((row0 + min(t, T - 1u)) * Hkv + g) * D;
${range(V4).map((i) => `      let w${i} = pool[k4 + ${i}u];`).join("\n")}
${Q.map((v) => `      var d${v} = 0.0;`).join("\n")}
${range(V4).map((i) => CH.map((c) => `      { let k = ${widen(`w${i}`, c)};${Q.map((v) => ` d${v} += dot(qs[${v * D4 + i * C + c}u], k);`).join("")} }`).join("\n")).join("\n")}
      // NOTE: the chunk's own keys (f32, not in a page) in a branch: select() would read them for every key
      if (kind == 2u) {
${Q.map((v) => `        d${v} = 0.0;`).join("\n")}
        for (var i = 0u; i < ${D4}u; i++) {
          let k = ${f4("kf", "fb + 4u * i")};
${Q.map((v) => `          d${v} += dot(qs[${v * D4}u + i], k);`).join("\n")}
        }
      }
${Q.map((v) => `      vis${v} = ok && ${v}u < nv;
      if (kind == 0u) { vis${v} = vis${v} && ringVisible(t, P, W, P + qr0 + ${v}u / G, fl); }
      else if (kind == 2u) { vis${v} = vis${v} && t <= qr0 + ${v}u / G; }
      s${v} = select(MASKED, d${v} * scale, vis${v});`).join("\n")}
      rows[par * ${NS}u + lid] = select(k4, FRESH | fb, kind == 2u);
    } else if (started) {
${values}
    }
${Q.map((v) => `    { let sm = subgroupMax(s${v}); if (scoring && lid % ${SG}u == 0u) { chunkMax[par * ${NSG * NQ}u + sg * ${NQ}u + ${v}u] = sm; } }`).join("\n")}
    workgroupBarrier();
    // ---- the running max moves to the chunk's; these keys' weights; the value side's factor
    if (scoring) {
${Q.map((v) => `      {
        var cm = MASKED;
        for (var i = 0u; i < ${NSG}u; i++) { cm = max(cm, chunkMax[par * ${NSG * NQ}u + i * ${NQ}u + ${v}u]); }
        let mn = max(m${v}, cm);
        let al = exp(m${v} - mn);
        let p = select(0.0, exp(s${v} - mn), vis${v});
        weights[par * ${NQ * NS}u + ${v * NS}u + lid] = p;
        l${v} = l${v} * al + p;
        m${v} = mn;
        if (lid == 0u) { alpha[par * ${NQ}u + ${v}u] = al; }
      }`).join("\n")}
    }
    workgroupBarrier();
    started = true;
    par ^= 1u;
  }
  }
  // ---- the last chunk's values
  if (!scoring && started) {
${values}
  }
  // ---- merge: the teams of a subgroup by shuffles, then the value side's subgroups in order through workgroup memory
${range(Math.log2(SG / VL)).map((b) => `${Q.map((v) => CH.map((c) => `  a${v}_${c} += subgroupShuffleXor(a${v}_${c}, ${VL << b}u);`).join("\n")).join("\n")}`).join("\n")}
${Q.map((v) => `  { let ls = subgroupAdd(l${v}); if (scoring && lid % ${SG}u == 0u) { lSum[sg * ${NQ}u + ${v}u] = ls; } }`).join("\n")}
  for (var e = lid; e < ${NQ * D}u; e += ${2 * NS}u) { accSum[e] = 0.0; }
  workgroupBarrier();
  for (var i = 0u; i < ${NSG}u; i++) {
    if (sg == ${NSG}u + i && lid % ${SG}u < ${VL}u) {
${Q.map((v) => CH.map((c) => `      { let at = ${v * D}u + lane * ${4 * C}u + ${4 * c}u; accSum[at] += a${v}_${c}.x; accSum[at + 1u] += a${v}_${c}.y; accSum[at + 2u] += a${v}_${c}.z; accSum[at + 3u] += a${v}_${c}.w; }`).join("\n")).join("\n")}
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
  for (var e = lid; e < nv * D; e += ${2 * NS}u) { scratch[(base + e / D) * (D + 2u) + 2u + e % D] = bitcast<u32>(accSum[e]); }
}`);
});
