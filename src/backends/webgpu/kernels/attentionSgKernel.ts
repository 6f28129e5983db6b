/**
 * @module backends/webgpu/kernels/attentionSgKernel
 *
 * Prefill attention on tensor cores (subgroup-matrix f16 x f16 -> f32
 * fragments, sgMatrixWgsl.ts): attentionKernels.ts's contract (work items,
 * visibility rule, partial rows for the reduce pass) for blocks of up to 64
 * query vectors, four subgroups of 16. Per step of KT keys (one or two
 * 16-key tiles), the keys and values are converted to f16 in workgroup
 * memory; each subgroup computes its 16 x KT scores (the block's queries
 * staged once as f16), masks and exponentiates them two lanes
 * per query vector, and accumulates P V into f32 output fragments.
 *
 * The running max moves lazily: only when a step's max exceeds it by more
 * than SG_ATTENTION_LAZY_MAX (so P <= e^8 stays well inside f16), and only then are the output
 * fragments rescaled, all subgroups together through workgroup memory (a
 * fragment cannot be scaled per row in place). The partial rows carry
 * that running max, which the reduce pass treats as any other.
 *
 * Precision: q, k, v and p are rounded once to f16 (relative 2^-11; pages of
 * bf16 lose nothing in the mantissa, f16 having 3 bits more), scores and
 * sums accumulate in f32: SG_ATTENTION_TOLERANCE of the output's L2 norm.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";
import { ATTENTION_ACCESS, ATTENTION_BINDINGS, IT_PARTIAL, ITEM_FIELDS_WGSL, PAGE_OF_WGSL, RING_VISIBILITY_WGSL } from "./attentionKernels.js";
import type { SgMatrixDialect } from "./matmulSgKernels.js";
import { SgMatrixWgsl } from "./sgMatrixWgsl.js";
import { MAIN_ARGS, WG_INDEX, kernelOf, memoKernel, range } from "./wgslCommon.js";

/** Query vectors per workgroup (four subgroups of 16). */
export const SG_ATTENTION_QUERIES = 64;
/** How far a step's max may pass the running max before the max moves (p <= e^8 in f16; tests set 0 to rescale often). */
export const SG_ATTENTION_LAZY_MAX = 8;
/** What the f16 tensor-core attention may differ by (relative L2 of the output). */
export const SG_ATTENTION_TOLERANCE = 4e-3;

export interface SgAttentionShape {
  readonly headDim: number;
  readonly group: number;
  readonly kvDType: KvDType;
  /** Keys per step: 16 or 32. */
  readonly stepKeys: number;
  /** Rescale the output at every step, not only where a running max moved (no fragment assigned inside a branch). */
  readonly rescaleEvery?: boolean;
}

/** Whether the kernel takes this shape: head dims of whole fragments up to 128, groups that fit a block, its workgroup memory within `sharedBytes`. */
export function sgAttentionApplies(headDim: number, group: number, stepKeys: number, sharedBytes: number): boolean {
  return headDim % 16 === 0 && headDim <= 128 && group <= SG_ATTENTION_QUERIES && sgAttentionSharedBytes(headDim, stepKeys) <= sharedBytes;
}

/** Workgroup memory the kernel declares (H200, head dim 128, 32 keys a step: 48 656 of 49 152 bytes). */
export function sgAttentionSharedBytes(headDim: number, stepKeys: number): number {
  const S = headDim + 8, NQ = SG_ATTENTION_QUERIES;
  return 2 * (2 * stepKeys * S + NQ * S) + 4 * Math.max(NQ * stepKeys, 1024) + 2 * NQ * stepKeys + 12 * NQ + 4 * 128 + 8 * stepKeys + 16;
}

/** WGSL `fn kvPair(i) -> vec2<f32>`: pool elements i and i + 1 (i even) at page precision. */
function kvPairWgsl(dtype: KvDType): string {
  if (dtype === "f32") return "fn kvPair(i: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(pool[i]), bitcast<f32>(pool[i + 1u])); }";
  if (dtype === "f16") return "fn kvPair(i: u32) -> vec2<f32> { return vec2<f32>(bitcast<vec2<f16>>(pool[i >> 1u])); }";
  return "fn kvPair(i: u32) -> vec2<f32> { let w = pool[i >> 1u]; return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }";
}

/** args and bindings: attentionKernels.ts attentionKernel's, and arg 6 (f32): how far a step's max may pass the running max before it moves (SG_ATTENTION_LAZY_MAX). */
export const sgAttentionKernel = memoKernel(function sgAttentionKernel(s: SgAttentionShape, dialect: SgMatrixDialect): Kernel {
  const { headDim: D, group: G, kvDType, stepKeys: KT } = s;
  if (!sgAttentionApplies(D, G, KT, Infinity) || (KT !== 16 && KT !== 32)) throw new Error(`tensor-core attention: head dim ${D}, group ${G}, ${KT} keys per step do not fit`);
  if (dialect.syntax !== "emulated" && !dialect.nonUniform) throw new Error("tensor-core attention: this device's WGSL compiler allows one subgroup per workgroup only");
  const NQ = SG_ATTENTION_QUERIES, NT = 128;
  const S = D + 8; // f16 stride of a staged row (Q, K, V): rows spread over banks
  const [DF, KF] = [D / 16, KT / 16];
  const ops = new SgMatrixWgsl(dialect.syntax);
  const vScale = kvDType === "f32" ? 1 : 2; // elements per pool word
  const scores = range(KF)
    .map(
      (j) => `    {
      var sc = ${ops.zero()};
${range(DF)
  .map((i) => `      sc = ${ops.mma(ops.load("left", "qs", `q0 * ${S}u + ${i * 16}u`, false, `${S}u`), ops.load("right", "kv", `${j * 16 * S + i * 16}u`, true, `${S}u`), "sc")};`)
  .join("\n")}
      ${ops.store("ss", `q0 * ${KT}u + ${j * 16}u`, "sc", `${KT}u`)};
    }`,
    )
    .join("\n");
  const pv = range(KF)
    .map(
      (j) => `    {
      let pj = ${ops.load("left", "ps", `q0 * ${KT}u + ${j * 16}u`, false, `${KT}u`)};
${range(DF)
  .map((i) => `      o${i} = ${ops.mma("pj", ops.load("right", "kv", `${(KT + j * 16) * S + i * 16}u`, false, `${S}u`), `o${i}`)};`)
  .join("\n")}
    }`,
    )
    .join("\n");
  // NOTE: a fragment goes through this subgroup's 256 floats of `ss` (free at these points), then each lane takes 8 of them
  const throughShared = (i: number, body: string) => `  ${ops.store("ss", "sg * 256u", `o${i}`, "16u")};
  workgroupBarrier();
  for (var e = lane; e < 256u; e += 32u) { let v = q0 + e / 16u; ${body} }
  workgroupBarrier();`;
  return kernelOf(`paged attention sgmatrix d${D} g${G} k${KT}${s.rescaleEvery ? " rescale-every" : ""} ${kvDType}${dialect.syntax === "emulated" ? " emulated" : ""}`, ATTENTION_ACCESS, /* wgsl */ `${ops.enables(dialect.nonUniform)}
${ATTENTION_BINDINGS}
const D = ${D}u;
const G = ${G}u;
const TK = 16u;
const KT = ${KT}u;
const MASKED = -3.0e38;
// NOTE: K rows [0, KT), V rows [KT, 2 KT)
var<workgroup> kv: array<f16, ${2 * KT * S}>;
// NOTE: the block's queries, loaded into fragments at every step: fragments loaded once and held across the
// step loop came out wrong on the H200 (emulated, the same kernel was right), though each operation alone is right
var<workgroup> qs: array<f16, ${NQ * S}>;
var<workgroup> ss: array<f32, ${Math.max(NQ * KT, 4 * 256)}>;
var<workgroup> ps: array<f16, ${NQ * KT}>;
var<workgroup> mrow: array<f32, ${NQ}>;
var<workgroup> lrow: array<f32, ${NQ}>;
var<workgroup> arow: array<f32, ${NQ}>;
var<workgroup> pairs: array<f32, ${NT}>;
// NOTE: every workgroup variable a multiple of 16 bytes, so none can put a fragment array off a 16-byte boundary
// however the driver orders them (a suspect of the wrong results on the H200; the matmul's three all are)
var<workgroup> rescale: array<u32, 4>;
var<workgroup> kmode: array<u32, ${KT}>;
var<workgroup> kposs: array<u32, ${KT}>;
${RING_VISIBILITY_WGSL}
${PAGE_OF_WGSL}
${kvPairWgsl(kvDType)}
fn toF16(x: f32) -> f16 { return f16(clamp(x, -65504.0, 65504.0)); }
/** Tile tj of the item's logical key list: kind (0 ring, 1 global, 2 the chunk's own), first key, keys. */
fn tileOf(tj: u32, ringTiles: u32, globalTiles: u32, numRing: u32, nG: u32, T: u32) -> vec3<u32> {
  if (tj < ringTiles) { return vec3<u32>(0u, tj * TK, min(TK, numRing - tj * TK)); }
  if (tj < ringTiles + globalTiles) { let f = (tj - ringTiles) * TK; return vec3<u32>(1u, f, min(TK, nG - f)); }
  let f = (tj - ringTiles - globalTiles) * TK;
  return vec3<u32>(2u, f, min(TK, T - f));
}
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let Hq = au(1u); let Hkv = au(2u); let scale = af(4u); let vBase = au(3u) * ${vScale}u; let lazyMax = af(6u);
${ITEM_FIELDS_WGSL}
  let nv = qn * G;
  let sg = lid / 32u; let lane = lid % 32u; let q0 = sg * 16u;
  if (lid < ${NQ}u) { mrow[lid] = MASKED; lrow[lid] = 0.0; }
  if (lid == 0u) { rescale[0] = 0u; }
  // ---- the block's query vectors, as f16, into registers for the whole item
  for (var e = lid; e < ${NQ * D}u; e += ${NT}u) {
    let v = e / D; let c = e % D;
    var x = 0.0;
    if (v < nv) { x = q[((row0 + qr0 + v / G) * Hq + g * G + v % G) * D + c]; }
    qs[v * ${S}u + c] = toF16(x);
  }
${range(DF).map((i) => `  var o${i} = ${ops.zero()};`).join("\n")}
  for (var tile = tile0; tile < tile1; tile += ${KF}u) {
    // ---- each key's visibility rule, once per step: 0 hidden, 1 seen, 2 seen within the window (ring, not admitted), 3 causal (the chunk's own)
    if (lid < KT) {
      let tj = tile + lid / TK;
      var mode = 0u; var kpos = 0u;
      if (tj < tile1) {
        let tl = tileOf(tj, ringTiles, globalTiles, numRing, nG, T);
        let t = tl.y + lid % TK;
        if (lid % TK < tl.z) {
          if (tl.x == 0u) { kpos = t + W * ((P - 1u - t) / W); mode = select(2u, 1u, flagAt(fl + t) != 0u); }
          else if (tl.x == 1u) { mode = 1u; }
          else { mode = 3u; kpos = t; }
        }
      }
      kmode[lid] = mode; kposs[lid] = kpos;
    }
    // ---- KT keys and values as f16 (0 where no key), eight elements per invocation and step
    for (var e = lid; e < ${(KT * D) / 8}u; e += ${NT}u) {
      let j = e / ${D / 8}u; let c = (e % ${D / 8}u) * 8u;
      let tj = tile + j / TK; let jj = j % TK;
      var ka = vec4<f32>(0.0); var kb = vec4<f32>(0.0); var va = vec4<f32>(0.0); var vb = vec4<f32>(0.0);
      if (tj < tile1) {
        let tl = tileOf(tj, ringTiles, globalTiles, numRing, nG, T);
        if (jj < tl.z) {
          let t = tl.y + jj;
          if (tl.x == 2u) {
            let at = ((row0 + t) * Hkv + g) * D + c;
            ka = vec4<f32>(kf[at], kf[at + 1u], kf[at + 2u], kf[at + 3u]); kb = vec4<f32>(kf[at + 4u], kf[at + 5u], kf[at + 6u], kf[at + 7u]);
            va = vec4<f32>(vf[at], vf[at + 1u], vf[at + 2u], vf[at + 3u]); vb = vec4<f32>(vf[at + 4u], vf[at + 5u], vf[at + 6u], vf[at + 7u]);
          } else {
            let at = ((pageOf(tl.x, t, tab, W, quest) - au(5u)) * 16u + t % 16u) * D + c;
            ka = vec4<f32>(kvPair(at), kvPair(at + 2u)); kb = vec4<f32>(kvPair(at + 4u), kvPair(at + 6u));
            va = vec4<f32>(kvPair(at + vBase), kvPair(at + vBase + 2u)); vb = vec4<f32>(kvPair(at + vBase + 4u), kvPair(at + vBase + 6u));
          }
        }
      }
      let kr = j * ${S}u + c; let vr = (KT + j) * ${S}u + c;
      for (var i = 0u; i < 4u; i++) {
        kv[kr + i] = toF16(ka[i]); kv[kr + 4u + i] = toF16(kb[i]);
        kv[vr + i] = toF16(va[i]); kv[vr + 4u + i] = toF16(vb[i]);
      }
    }
    workgroupBarrier();
    // ---- this subgroup's 16 x KT scores
${scores}
    workgroupBarrier();
    // ---- masked and scaled, two lanes per query vector (keys [h KT/2, (h + 1) KT/2)); the step's max per vector
    let v = q0 + lane / 2u; let h = lane % 2u;
    let r = qr0 + v / G;
    var mt = MASKED;
    for (var jj = 0u; jj < ${KT / 2}u; jj++) {
      let j = h * ${KT / 2}u + jj;
      let mode = kmode[j]; let kp = kposs[j];
      let visible = v < nv && (mode == 1u || (mode == 2u && P + r - kp < W) || (mode == 3u && kp <= r));
      let sc = select(MASKED, ss[v * KT + j] * scale, visible);
      ss[v * KT + j] = sc;
      mt = max(mt, sc);
    }
    pairs[lid] = mt;
    workgroupBarrier();
    mt = max(mt, pairs[lid ^ 1u]);
    // NOTE: the running max moves only past lazyMax above it (8: p <= e^8 holds in f16, and O is rarely rescaled)
    let mOld = mrow[v];
    var m = mOld; var a = 1.0;
    if (mt > MASKED && (mOld == MASKED || mt > mOld + lazyMax)) { m = mt; a = select(exp(mOld - mt), 0.0, mOld == MASKED); }
    var sum = 0.0;
    for (var jj = 0u; jj < ${KT / 2}u; jj++) {
      let j = h * ${KT / 2}u + jj;
      let sc = ss[v * KT + j];
      let p = select(exp(sc - m), 0.0, sc == MASKED);
      ps[v * KT + j] = f16(p);
      sum += p;
    }
    workgroupBarrier();
    pairs[lid] = sum;
    workgroupBarrier();
    if (h == 0u) {
      mrow[v] = m; lrow[v] = lrow[v] * a + sum + pairs[lid + 1u]; arow[v] = a;
      // NOTE: a row's first visible keys need no rescale (its output is still 0)
      if (a != 1.0 && mOld != MASKED) { rescale[0] = 1u; }
    }
    // ---- where a running max moved, every subgroup rescales its output rows (workgroupUniformLoad: a barrier)
    ${s.rescaleEvery ? "workgroupBarrier();\n    {" : "if (workgroupUniformLoad(&rescale[0]) != 0u) {"}
${range(DF)
  .map((i) => `${throughShared(i, "ss[sg * 256u + e] *= arow[v];")}
  o${i} = ${ops.load("result", "ss", "sg * 256u", false, "16u")};
  workgroupBarrier();`)
  .join("\n")
  .replace(/^/gm, "    ")}
      if (lid == 0u) { rescale[0] = 0u; }
    }
    // ---- O += P V
${pv}
    workgroupBarrier();
  }
  // ---- partial rows: max, sum, acc
  let base = au(ib + ${IT_PARTIAL}u);
${range(DF)
  .map((i) => throughShared(i, `if (v < nv) { scratch[(base + v) * (D + 2u) + ${2 + i * 16}u + e % 16u] = bitcast<u32>(ss[sg * 256u + e]); }`))
  .join("\n")}
  if (lid < nv) {
    scratch[(base + lid) * (D + 2u)] = bitcast<u32>(mrow[lid]);
    scratch[(base + lid) * (D + 2u) + 1u] = bitcast<u32>(lrow[lid]);
  }
}
${ops.helpers()}`);
});
