/**
 * @module backends/webgpu/kernels/decodeAttentionKernel
 *
 * Paged attention for blocks of few query vectors (decode: one row of
 * `group` query heads per KV head), shaped for memory bandwidth: the same
 * work items, visibility rule and partial rows as attentionKernels.ts (its
 * reduce pass finishes the job), but no barrier per tile: the item's page
 * ids are read into workgroup memory SEG tiles at a time (two barriers per
 * segment), so no step's K/V loads wait on a table lookup. A team of LANES
 * (4, 8 or 16) consecutive invocations of one subgroup owns one key at
 * a time: each reads its slice of the key and value rows straight from the
 * page (vec4 loads, interleaved so a team's loads are contiguous), the
 * team's dot products are summed by subgroupShuffleXor, and each team keeps
 * its own online softmax (running max, sum and output slice per query) over
 * the keys it owns: key `team` of each tile of 16 (TEAMS = 128 / LANES teams
 * cover 128 / LANES / 16 tiles per step). At the item's end the teams' states
 * merge: within a subgroup by shuffles, across subgroups through workgroup
 * memory.
 *
 * Needs: subgroups of at least LANES invocations made of consecutive
 * invocation indices; 16 keys per tile; rows of whole vec4s per lane
 * (headDim x page bytes divisible by 16 LANES) and V pages at a vec4 boundary.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";
import { IT_PARTIAL, RING_VISIBILITY_WGSL } from "./attentionKernels.js";
import { DECODE_BINDINGS_WGSL, DECODE_ITEM_WGSL, type DecodeBlockShape, KEY_PLACE_WGSL, SEG, segPagesWgsl, widenChunk } from "./decodeCommon.js";
import { kernelOf, MAIN_ARGS, memoKernel, range } from "./wgslCommon.js";

export interface DecodeAttentionShape extends DecodeBlockShape {
  /** Invocations per key (a power of two, at most the subgroup size). */
  readonly lanes: number;
  /** Keys each team takes per step (loads issued before the math): 2 or 4. */
  readonly unroll: number;
}

const NT = 128;

/**
 * The lanes per key this shape can use with subgroups of at least
 * `minSubgroup` (0: the kernel does not apply): `wanted` where it fits, else 8 or 4.
 */
export function decodeAttentionLanes(headDim: number, kvDType: KvDType, minSubgroup: number, wanted = 0): number {
  const rowBytes = headDim * (kvDType === "f32" ? 4 : 2);
  for (const lanes of [wanted, 8, 4]) if (lanes > 0 && lanes <= minSubgroup && NT % lanes === 0 && rowBytes % (16 * lanes) === 0) return lanes;
  return 0;
}

/**
 * args: numItems, Hq, Hkv, vBase (words), scale (f32), firstPage, then items at word 8.
 * Bindings as attentionKernel's: q, kFresh, vFresh f32; pool (as vec4<u32>); tables; flags; scratch.
 */
export const decodeAttentionKernel = memoKernel(function decodeAttentionKernel(s: DecodeAttentionShape): Kernel {
  const { headDim: D, group: G, numQueries: NQ, lanes: LANES, kvDType, subgroupSize: SG, unroll: UNROLL } = s;
  if (SG < LANES || NT % SG !== 0) throw new Error(`decode attention: subgroups of ${SG} do not hold teams of ${LANES} in ${NT} invocations`);
  const half = kvDType !== "f32";
  const V4 = (D * (half ? 2 : 4)) / (16 * LANES); // vec4<u32> loads per lane per row
  const C = V4 * (half ? 2 : 1); // vec4<f32> chunks per lane
  const TEAMS = NT / LANES;
  const KEYS = TEAMS * UNROLL; // keys per step
  if (KEYS % 16 !== 0) throw new Error(`decode attention: ${KEYS} keys per step is not whole tiles`);
  const Q = range(NQ), CH = range(C), U = range(UNROLL), L4 = range(V4);
  // dims of chunk c: 16-bit pages give two chunks per vec4 (its x,y words then z,w), f32 pages one
  const chunkDim = (c: number) => (half ? `((${Math.floor(c / 2)}u * LANES + lane) * 8u + ${(c % 2) * 4}u)` : `((${c}u * LANES + lane) * 4u)`);
  const widen = (w: string, c: number) => widenChunk(kvDType, w, c);
  const fresh = (arr: string, base: string, c: number) => `vec4<f32>(${range(4).map((e) => `${arr}[${base} + ${chunkDim(c)} + ${e}u]`).join(", ")})`;
  const shuffles = (x: string) => range(Math.log2(LANES)).map((b) => `${x} += subgroupShuffleXor(${x}, ${1 << b}u);`).join(" ");
  return kernelOf(`decode attention d${D} g${G} q${NQ} p${LANES} u${UNROLL} ${kvDType}`, ["ro", "ro", "ro", "ro", "ro", "ro", "rw"], /* wgsl */ `enable subgroups;
${DECODE_BINDINGS_WGSL}
const D = ${D}u;
const G = ${G}u;
const LANES = ${LANES}u;
const TK = 16u;
const MASKED = -3.0e38;
// a team's state, merged across subgroups at the end
var<workgroup> mAll: array<f32, ${(NT / SG) * NQ}>;
var<workgroup> lSum: array<f32, ${NQ}>;
var<workgroup> accSum: array<f32, ${NQ * D}>;
var<workgroup> segPages: array<u32, ${SEG}>;
${RING_VISIBILITY_WGSL}
${KEY_PLACE_WGSL}

@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
${DECODE_ITEM_WGSL}
  let lane = lid % LANES; let team = lid / LANES;
  // ---- this lane's slice of each query, its running state
${Q.map((v) => `  let qb${v} = ((row0 + qr0 + min(${v}u, nv - 1u) / G) * Hq + g * G + min(${v}u, nv - 1u) % G) * D;
${CH.map((c) => `  let q${v}_${c} = ${fresh("q", `qb${v}`, c)};`).join("\n")}
  var m${v} = MASKED; var l${v} = 0.0;
${CH.map((c) => `  var a${v}_${c} = vec4<f32>(0.0);`).join("\n")}`).join("\n")}
  // NOTE: the item's page ids come into workgroup memory a segment at a time, so a step's
  // K/V loads do not wait on its table lookups
  for (var seg = tile0; seg < tile1; seg += ${SEG}u) {
  let segEnd = min(seg + ${SEG}u, tile1);
  workgroupBarrier();
${segPagesWgsl(NT)}
  workgroupBarrier();
  for (var tile = seg; tile < segEnd; tile += ${KEYS / 16}u) {
${U.map((u) => `    // ---- key ${u} of the team in this step: where it lives, its slice of K and V
    let kx${u} = team + ${TEAMS * u}u;
    let tl${u} = tile + kx${u} / 16u; let j${u} = kx${u} % 16u;
    let place${u} = keyPlace(tl${u}, ringTiles, globalTiles, numRing, nG, T);
    let kind${u} = place${u}.x; let first${u} = place${u}.y; let count${u} = place${u}.z;
    let ok${u} = tl${u} < segEnd && j${u} < count${u};
    let t${u} = first${u} + j${u};
    let page${u} = select(firstPage, segPages[min(tl${u} - seg, ${SEG - 1}u)], ok${u});
    let krow${u} = ((page${u} - firstPage) * 16u + t${u} % 16u) * D;
    let k4${u} = krow${u} * ${half ? 2 : 4}u / 16u;
    let fb${u} = ((row0 + min(t${u}, T - 1u)) * Hkv + g) * D;
${L4.map((i) => `    let kw${u}_${i} = pool[k4${u} + ${i}u * LANES + lane];
    let vw${u}_${i} = pool[vBase4 + k4${u} + ${i}u * LANES + lane];`).join("\n")}`).join("\n")}
${U.map((u) => `    // ---- key ${u}: its slices widened to f32, its score for each query (masked by the rule)
    let isFresh${u} = kind${u} == 2u;
    // NOTE: a branch, not select(): select would load the chunk's own rows for every key
${CH.map((c) => `    var k${u}_${c} = ${widen(`kw${u}_${Math.floor(c / (half ? 2 : 1))}`, c)};
    var v${u}_${c} = ${widen(`vw${u}_${Math.floor(c / (half ? 2 : 1))}`, c)};`).join("\n")}
    if (isFresh${u}) {
${CH.map((c) => `      k${u}_${c} = ${fresh("kf", `fb${u}`, c)};
      v${u}_${c} = ${fresh("vf", `fb${u}`, c)};`).join("\n")}
    }
${Q.map((v) => `    var d${u}_${v} = ${CH.map((c) => `dot(q${v}_${c}, k${u}_${c})`).join(" + ")};
    ${shuffles(`d${u}_${v}`)}
    var vis${u}_${v} = ok${u} && ${v}u < nv;
    if (kind${u} == 0u) {
      vis${u}_${v} = vis${u}_${v} && ringVisible(t${u}, P, W, P + qr0 + ${v}u / G, fl);
    } else if (kind${u} == 2u) {
      vis${u}_${v} = vis${u}_${v} && t${u} <= qr0 + ${v}u / G;
    }
    let s${u}_${v} = select(MASKED, d${u}_${v} * scale, vis${u}_${v});`).join("\n")}`).join("\n")}
    // ---- one online-softmax update per query for the step's keys (a hidden key's value never enters)
${Q.map((v) => `    {
      let mn = max(m${v}, ${U.map((u) => `s${u}_${v}`).reduce((a, b) => `max(${a}, ${b})`)});
      let al = exp(m${v} - mn);
${U.map((u) => `      let p${u} = select(0.0, exp(s${u}_${v} - mn), vis${u}_${v});`).join("\n")}
      l${v} = l${v} * al + ${U.map((u) => `p${u}`).join(" + ")};
${CH.map((c) => `      a${v}_${c} = a${v}_${c} * al${U.map((u) => ` + select(vec4<f32>(0.0), p${u} * v${u}_${c}, vis${u}_${v})`).join("")};`).join("\n")}
      m${v} = mn;
    }`).join("\n")}
  }
  }
  // ---- merge the teams of a subgroup (lanes of equal index across teams), by shuffles
${range(Math.log2(SG / LANES)).map((b) => `  {
    let off = ${LANES << b}u;
${Q.map((v) => `    {
      let mo = subgroupShuffleXor(m${v}, off); let lo = subgroupShuffleXor(l${v}, off);
      let mn = max(m${v}, mo);
      let fa = exp(m${v} - mn); let fb = exp(mo - mn);
      l${v} = l${v} * fa + lo * fb;
${CH.map((c) => `      a${v}_${c} = a${v}_${c} * fa + subgroupShuffleXor(a${v}_${c}, off) * fb;`).join("\n")}
      m${v} = mn;
    }`).join("\n")}
  }`).join("\n")}
  // ---- then across subgroups: the max of each query, then sums in subgroup order
  let sg = lid / ${SG}u; let nsg = ${NT / SG}u; let leader = lid % ${SG}u < LANES;
  if (lid % ${SG}u == 0u) {
${Q.map((v) => `    mAll[sg * ${NQ}u + ${v}u] = m${v};`).join("\n")}
  }
  for (var e = lid; e < ${NQ * D}u; e += ${NT}u) { accSum[e] = 0.0; }
  if (lid < ${NQ}u) { lSum[lid] = 0.0; }
  workgroupBarrier();
${Q.map((v) => `  var M${v} = MASKED;
  for (var i = 0u; i < nsg; i++) { M${v} = max(M${v}, mAll[i * ${NQ}u + ${v}u]); }
  let f${v} = exp(m${v} - M${v});`).join("\n")}
  for (var i = 0u; i < nsg; i++) {
    if (sg == i && leader) {
${Q.map((v) => `      if (lane == 0u) { lSum[${v}u] += l${v} * f${v}; }
${CH.map((c) => `      { let at = ${v * D}u + ${chunkDim(c)}; let x = a${v}_${c} * f${v}; accSum[at] += x.x; accSum[at + 1u] += x.y; accSum[at + 2u] += x.z; accSum[at + 3u] += x.w; }`).join("\n")}`).join("\n")}
    }
    workgroupBarrier();
  }
  // ---- partial rows: max, sum, acc (the reduce pass of attentionKernels.ts reads them)
  let base = au(ib + ${IT_PARTIAL}u);
  if (lid < nv) {
    var M = MASKED;
    for (var i = 0u; i < nsg; i++) { M = max(M, mAll[i * ${NQ}u + lid]); }
    scratch[(base + lid) * (D + 2u)] = bitcast<u32>(M);
    scratch[(base + lid) * (D + 2u) + 1u] = bitcast<u32>(lSum[lid]);
  }
  for (var e = lid; e < nv * D; e += ${NT}u) { scratch[(base + e / D) * (D + 2u) + 2u + e % D] = bitcast<u32>(accSum[e]); }
}`);
});
