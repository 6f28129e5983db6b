/**
 * @module backends/webgpu/kernels/attentionSgKernel
 *
 * Prefill attention on tensor cores (subgroup-matrix f16 x f16 -> f32
 * fragments, sgMatrixWgsl.ts): attentionKernels.ts's contract (work items,
 * visibility rule, partial rows for the reduce pass) for blocks of up to 64
 * query vectors, four subgroups of 16. Per step of KT keys (one or two
 * 16-key tiles), the keys and values are converted to f16 in workgroup
 * memory; each subgroup computes its 16 x KT scores, masks and exponentiates them two lanes
 * per query vector, and accumulates P V into f32 output fragments.
 *
 * The running max moves lazily: only when a step's max exceeds it by more
 * than SG_ATTENTION_LAZY_MAX (so P <= e^8 stays well inside f16), and only then are the output
 * fragments rescaled, all subgroups together through workgroup memory (a
 * fragment cannot be scaled per row in place). The partial rows carry
 * that running max, which the reduce pass treats as any other.
 *
 * Precision: split (the default), q, k, v and p are each the sum of two f16
 * (sgMatrixWgsl.ts F16_SPLIT_WGSL) and every product takes the three terms
 * that matter: f32's answers, SG_ATTENTION_SPLIT_TOLERANCE (H200: 4e-7 of the
 * largest output), for three products per one; the queries are then held in
 * registers (staged through the K/V buffer), so head dim 128 fits 48 KiB at
 * 16 keys a step. Unsplit, they are rounded once to f16 (relative 2^-11;
 * pages of bf16 lose nothing in the mantissa): SG_ATTENTION_TOLERANCE, and a
 * greedy id of the mistral fixture flipped. Scores and sums are f32.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";
import { ATTENTION_ACCESS, ATTENTION_BINDINGS, CHUNK_VISIBILITY_WGSL, IT_PARTIAL, ITEM_FIELDS_WGSL, PAGE_OF_WGSL, RING_VISIBILITY_WGSL } from "./attentionKernels.js";
import type { SgMatrixDialect } from "./matmulSgKernels.js";
import { F16_SPLIT_WGSL, SgMatrixWgsl } from "./sgMatrixWgsl.js";
import { keyModesWgsl, partialRowsWgsl, softmaxStepWgsl, TILE_OF_WGSL } from "./sgAttentionWgsl.js";
import { MAIN_ARGS, WG_INDEX, kernelOf, memoKernel, range } from "./wgslCommon.js";

/** Query vectors per workgroup (four subgroups of 16). */
export const SG_ATTENTION_QUERIES = 64;
/** How far a step's max may pass the running max before the max moves (p <= e^8 in f16; tests set 0 to rescale often). */
export const SG_ATTENTION_LAZY_MAX = 8;
/** What the tensor-core attention may differ by, operands rounded once to f16 (largest error / largest output, as the conformance suite measures). */
export const SG_ATTENTION_TOLERANCE = 4e-3;
/** The same, operands split into two f16 each: f32's products up to the low halves' 2^-24 floor (lavapipe, emulated: at most 4.2e-7; the f32 kernel 2e-7). */
export const SG_ATTENTION_SPLIT_TOLERANCE = 1e-5;

export interface SgAttentionShape {
  readonly headDim: number;
  readonly group: number;
  readonly kvDType: KvDType;
  /** Keys per step: 16 or 32. */
  readonly stepKeys: number;
  /** Each operand as the sum of two f16 (SG_ATTENTION_SPLIT_TOLERANCE), at three products per one; else rounded once to f16. */
  readonly split: boolean;
}

/** Whether the kernel takes this shape: head dims of whole fragments up to 128, groups that fit a block, its workgroup memory within `sharedBytes`. */
export function sgAttentionApplies(headDim: number, group: number, stepKeys: number, split: boolean, sharedBytes: number): boolean {
  return headDim % 16 === 0 && headDim <= 128 && group <= SG_ATTENTION_QUERIES && sgAttentionSharedBytes(headDim, stepKeys, split) <= sharedBytes;
}

/** The keys per step the kernel runs with for this shape: `wanted` where it fits `sharedBytes`, else 16 where that fits, else 0 (the f32 kernel). */
export function sgAttentionStepKeys(wanted: number, headDim: number, group: number, split: boolean, sharedBytes: number): number {
  if (wanted <= 0) return 0;
  return [wanted, 16].find((keys) => sgAttentionApplies(headDim, group, keys, split, sharedBytes)) ?? 0;
}

/** Workgroup memory the kernel declares (head dim 128, 32 keys a step: 48 656 bytes; split, 16 keys: 27 408; the H200 has 49 152). */
export function sgAttentionSharedBytes(headDim: number, stepKeys: number, split: boolean): number {
  const S = headDim + 8, NQ = SG_ATTENTION_QUERIES, parts = split ? 2 : 1;
  const staged = split ? 2 * 2 * stepKeys * S * parts : 2 * (2 * stepKeys * S + NQ * S);
  return staged + 4 * Math.max(NQ * stepKeys, 1024) + 2 * NQ * stepKeys * parts + 12 * NQ + 4 * 128 + 8 * stepKeys + 16;
}

/** WGSL `fn kvPair(i) -> vec2<f32>`: pool elements i and i + 1 (i even) at page precision. */
function kvPairWgsl(dtype: KvDType): string {
  if (dtype === "f32") return "fn kvPair(i: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(pool[i]), bitcast<f32>(pool[i + 1u])); }";
  if (dtype === "f16") return "fn kvPair(i: u32) -> vec2<f32> { return vec2<f32>(bitcast<vec2<f16>>(pool[i >> 1u])); }";
  return "fn kvPair(i: u32) -> vec2<f32> { let w = pool[i >> 1u]; return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }";
}

/** args and bindings: attentionKernels.ts attentionKernel's, and arg 6 (f32): how far a step's max may pass the running max before it moves (SG_ATTENTION_LAZY_MAX). */
export const sgAttentionKernel = memoKernel(function sgAttentionKernel(s: SgAttentionShape, dialect: SgMatrixDialect): Kernel {
  const { headDim: D, group: G, kvDType, stepKeys: KT, split } = s;
  if (!sgAttentionApplies(D, G, KT, split, Infinity) || (KT !== 16 && KT !== 32)) throw new Error(`tensor-core attention: head dim ${D}, group ${G}, ${KT} keys per step do not fit`);
  if (dialect.syntax !== "emulated" && !dialect.nonUniform) throw new Error("tensor-core attention: this device's WGSL compiler allows one subgroup per workgroup only");
  const NQ = SG_ATTENTION_QUERIES, NT = 128;
  const S = D + 8; // f16 stride of a staged row (Q, K, V): rows spread over banks
  const [DF, KF] = [D / 16, KT / 16];
  const ops = new SgMatrixWgsl(dialect.syntax);
  const vScale = kvDType === "f32" ? 1 : 2; // elements per pool word
  // NOTE: split: kv holds K's high and low halves, then V's (rows [0, KT) K hi, [KT, 2 KT) K lo, then V); unsplit: K, V
  const parts = split ? 2 : 1;
  const kRow = (part: number, j: number) => (part * KT + j * 16) * S;
  const vRow = (part: number, j: number) => ((parts + part) * KT + j * 16) * S;
  // NOTE: the products of a + a' and b + b' that matter: a b, a b', a' b (a' b' is below f32's rounding)
  const terms = split ? [[0, 0], [0, 1], [1, 0]] : [[0, 0]];
  const qFrag = (part: number, i: number) => (split ? `q${part}_${i}` : ops.load("left", "qs", `q0 * ${S}u + ${i * 16}u`, false, `${S}u`));
  const scores = range(KF)
    .map(
      (j) => `    {
      var sc = ${ops.zero()};
${range(DF)
  .flatMap((i) => terms.map(([a, b]) => `      sc = ${ops.mma(qFrag(a, i), ops.load("right", "kv", `${kRow(b, j) + i * 16}u`, true, `${S}u`), "sc")};`))
  .join("\n")}
      ${ops.store("ss", `q0 * ${KT}u + ${j * 16}u`, "sc", `${KT}u`)};
    }`,
    )
    .join("\n");
  const pv = range(KF)
    .map(
      (j) => `    {
${range(parts)
  .map((a) => `      let p${a} = ${ops.load("left", "ps", `${a * NQ * KT}u + q0 * ${KT}u + ${j * 16}u`, false, `${KT}u`)};`)
  .join("\n")}
${range(DF)
  .flatMap((i) => terms.map(([a, b]) => `      o${i} = ${ops.mma(`p${a}`, ops.load("right", "kv", `${vRow(b, j) + i * 16}u`, false, `${S}u`), `o${i}`)};`))
  .join("\n")}
    }`,
    )
    .join("\n");
  // NOTE: split, the queries go through kv (NQ rows fit its 4 KT) into registers held for the whole item, high half then low
  const queryFill = (target: string, part: number) => `  for (var e = lid; e < ${NQ * D}u; e += ${NT}u) {
    let v = e / D; let c = e % D;
    var x = 0.0;
    if (v < nv) { x = q[((row0 + qr0 + v / G) * Hq + g * G + v % G) * D + c]; }
    ${target}[v * ${S}u + c] = ${part === 0 ? "toF16(x)" : "lowF16(x)"};
  }
  workgroupBarrier();`;
  const queries = split
    ? range(2)
        .map((part) => `${queryFill("kv", part)}
${range(DF).map((i) => `  let q${part}_${i} = ${ops.load("left", "kv", `q0 * ${S}u + ${i * 16}u`, false, `${S}u`)};`).join("\n")}
  workgroupBarrier();`)
        .join("\n")
    : queryFill("qs", 0);
  const stage = (row: (part: number) => string, a: string, b: string) =>
    range(parts)
      .map((part) => `      { let r = ${row(part)}; for (var i = 0u; i < 4u; i++) { kv[r + i] = ${part === 0 ? "toF16" : "lowF16"}(${a}[i]); kv[r + 4u + i] = ${part === 0 ? "toF16" : "lowF16"}(${b}[i]); } }`)
      .join("\n");
  const place = { q0: "q0", lane: "lane", at: "sg * 256u" };
  return kernelOf(`paged attention sgmatrix d${D} g${G} k${KT}${split ? " split" : ""} ${kvDType}${dialect.syntax === "emulated" ? " emulated" : ""}`, ATTENTION_ACCESS, /* wgsl */ `${ops.enables(dialect.nonUniform)}
${ATTENTION_BINDINGS}
const D = ${D}u;
const G = ${G}u;
const TK = 16u;
const KT = ${KT}u;
const MASKED = -3.0e38;
var<workgroup> kv: array<f16, ${2 * parts * KT * S}>;
${split ? "" : `// NOTE: the block's queries, loaded into fragments at every step (fewer registers than holding DF fragments across the loop)
var<workgroup> qs: array<f16, ${NQ * S}>;`}
var<workgroup> ss: array<f32, ${Math.max(NQ * KT, 4 * 256)}>;
// NOTE: split: P's high halves, then its low halves
var<workgroup> ps: array<f16, ${parts * NQ * KT}>;
var<workgroup> mrow: array<f32, ${NQ}>;
var<workgroup> lrow: array<f32, ${NQ}>;
var<workgroup> arow: array<f32, ${NQ}>;
var<workgroup> pairs: array<f32, ${NT}>;
// NOTE: every workgroup variable a multiple of 16 bytes, so none puts a fragment array off a 16-byte boundary
// however the driver orders them: with a lone u32 here, the H200 gave garbage and NaN (emulated, it was right)
var<workgroup> rescale: array<u32, 4>;
var<workgroup> kmode: array<u32, ${KT}>;
var<workgroup> kposs: array<u32, ${KT}>;
${RING_VISIBILITY_WGSL}
${CHUNK_VISIBILITY_WGSL}
${PAGE_OF_WGSL}
${kvPairWgsl(kvDType)}
${F16_SPLIT_WGSL}
${TILE_OF_WGSL}
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let Hq = au(1u); let Hkv = au(2u); let scale = af(4u); let vBase = au(3u) * ${vScale}u; let lazyMax = af(6u);
${ITEM_FIELDS_WGSL}
  let nv = qn * G;
  let sg = lid / 32u; let lane = lid % 32u; let q0 = sg * 16u;
  if (lid < ${NQ}u) { mrow[lid] = MASKED; lrow[lid] = 0.0; }
  if (lid == 0u) { rescale[0] = 0u; }
  // ---- the block's query vectors, as f16
${queries}
${range(DF).map((i) => `  var o${i} = ${ops.zero()};`).join("\n")}
  for (var tile = tile0; tile < tile1; tile += ${KF}u) {
    // ---- each key's visibility rule, once per step: 0 hidden, 1 seen, 2 seen within the window (ring, not admitted),
    // 3 causal (the chunk's own), 4 causal within the window (the chunk's own, not admitted)
${keyModesWgsl("globalTiles", "nG")}
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
${stage((part) => `(${part * KT}u + j) * ${S}u + c`, "ka", "kb")}
${stage((part) => `(${(parts + part) * KT}u + j) * ${S}u + c`, "va", "vb")}
    }
    workgroupBarrier();
    // ---- this subgroup's 16 x KT scores
${scores}
    workgroupBarrier();
    // ---- masked and scaled, two lanes per query vector (keys [h KT/2, (h + 1) KT/2)); the step's max per vector
${softmaxStepWgsl(ops, place, { NQ, KT, DF, split, skew: false })}
    // ---- O += P V
${pv}
    workgroupBarrier();
  }
  // ---- partial rows: max, sum, acc
${partialRowsWgsl(ops, place, DF, `${IT_PARTIAL}`)}
}
${ops.helpers()}`);
});
