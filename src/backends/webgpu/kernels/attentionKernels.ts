/**
 * @module backends/webgpu/kernels/attentionKernels
 *
 * Batched paged attention (backends/cpu/pagedAttention.ts is the contract
 * and the literal reference), flash style: a workgroup takes one work item,
 * (sequence, KV head, block of query rows, range of key tiles), and runs an
 * online softmax over tiles of 16 keys, each a ring page (masked by
 * docs/design.md §3's rule), a global page (the block table's, or Quest's
 * choice) or 16 of the chunk's own rows (causal, and past the window only
 * if `admit` admitted them). Keys are read at page precision and widened to
 * f32 once per tile in workgroup memory; scores, the running max and sum,
 * and the output accumulate in f32.
 *
 * The host plans the items (webgpu/attentionPlan.ts): long key ranges are
 * split into equal chunks of tiles across sequences and heads (split-K) so
 * decode at long context fills the GPU; every item writes partial rows
 * (max, sum, acc[d]) and a reduce pass (attentionReduceKernel.ts) combines a block's splits into `out`.
 *
 * Work item (u32 words, ITEM_WORDS): see attentionPlan.ts.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";
import { elementReader, HALF_WGSL, MAIN_ARGS, WG_INDEX, memoKernel, kernelOf } from "./wgslCommon.js";

export const ITEM_WORDS = 16;
// word offsets in an item
export const IT_ROW0 = 0; //          batch row of the sequence's first query
export const IT_T = 1; //             the sequence's rows this step
export const IT_P = 2; //             tokens cached before the step
export const IT_W = 3; //             window
export const IT_TABLE = 4; //         word index of the head's block-table row
export const IT_FLAGS = 5; //         byte index of the head's ring flags
export const IT_NGLOBAL = 6; //       global tokens (upper bound when Quest chooses)
export const IT_QUEST = 7; //         word index in scratch of Quest's page list, or 0xffffffff
export const IT_QUEST_COUNT = 8; //   word index in scratch of Quest's token count
export const IT_G = 9; //             KV head
export const IT_QR0 = 10; //          first query row of the block (within the sequence)
export const IT_QN = 11; //           rows in the block
export const IT_TILE0 = 12; //        key tiles [tile0, tile1) of the logical list ring, global, chunk
export const IT_TILE1 = 13;
export const IT_PARTIAL = 14; //      first partial row (of qn * group)
export const IT_ADMIT = 15; //        byte index in scratch of the step's admit flag of the sequence's first row (KV head g), or NO_ADMIT
/** IT_ADMIT of a sequence whose chunk keys are all seen causally (a chunk within its window, or full admission). */
export const NO_ADMIT = 0xffffffff;

export const REDUCE_WORDS = 6;

export const NUM_THREADS = 128;

export interface AttentionShape {
  readonly headDim: number;
  readonly group: number;
  readonly kvDType: KvDType;
  /** Keys per tile (16, or 8 where workgroup memory is short). */
  readonly tileKeys: number;
  /** Query vectors per workgroup (rows of a block x group). */
  readonly numQueries: number;
}

/**
 * A work item's fields as WGSL lets, shared by both attention kernels (in
 * `main`, after `wg`; needs `scratch`, for Quest's counts, and the kernel's
 * `TK` keys per tile): the item's rows, its tiles [tile0, tile1), and how
 * many of the logical key list's tiles are ring and global. P: tokens cached before the step.
 */
export const ITEM_FIELDS_WGSL = /* wgsl */ `  let ib = 8u + wg * ${ITEM_WORDS}u;
  let row0 = au(ib + ${IT_ROW0}u); let T = au(ib + ${IT_T}u); let P = au(ib + ${IT_P}u); let W = au(ib + ${IT_W}u);
  let tab = au(ib + ${IT_TABLE}u); let fl = au(ib + ${IT_FLAGS}u); let g = au(ib + ${IT_G}u);
  let qr0 = au(ib + ${IT_QR0}u); let qn = au(ib + ${IT_QN}u); let tile0 = au(ib + ${IT_TILE0}u); let tile1 = au(ib + ${IT_TILE1}u);
  let quest = au(ib + ${IT_QUEST}u); let adm = au(ib + ${IT_ADMIT}u);
  var nG = au(ib + ${IT_NGLOBAL}u);
  if (quest != 0xffffffffu) { nG = min(nG, scratch[au(ib + ${IT_QUEST_COUNT}u)]); }
  let numRing = min(P, W);
  let ringTiles = (numRing + TK - 1u) / TK;
  let globalTiles = (nG + TK - 1u) / TK;`;

/** The bindings of the prefill attention kernels (this one and attentionSgKernel.ts), and their access. */
export const ATTENTION_BINDINGS = /* wgsl */ `@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kf: array<f32>;
@group(0) @binding(2) var<storage, read> vf: array<f32>;
@group(0) @binding(3) var<storage, read> pool: array<u32>;
@group(0) @binding(4) var<storage, read> tables: array<i32>;
@group(0) @binding(5) var<storage, read> flags: array<u32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<u32>;`;
export const ATTENTION_ACCESS: Kernel["bindings"] = ["ro", "ro", "ro", "ro", "ro", "ro", "rw"];

/**
 * `fn pageOf(kind, t, tab, W, quest)`: the pool page of key t of a ring
 * (kind 0) or global (kind 1) tile, from the block table's row at `tab` or
 * Quest's choice copied into scratch at `quest`.
 */
export const PAGE_OF_WGSL = /* wgsl */ `
fn pageOf(kind: u32, t: u32, tab: u32, W: u32, quest: u32) -> u32 {
  if (kind == 0u) { return u32(tables[tab + t / 16u]); }
  if (quest != 0xffffffffu) { return scratch[quest + t / 16u]; }
  return u32(tables[tab + W / 16u + t / 16u]);
}`;

/**
 * The visibility rule of ring keys (docs/design.md §3), for kernels that bind
 * the ring flags as `flags` (u8 packed in u32): ring slot t of a sequence
 * with P tokens cached holds the latest position written there, kp; a query
 * at position pos sees it inside the window, or when it was admitted.
 */
export const RING_VISIBILITY_WGSL = /* wgsl */ `
fn flagAt(b: u32) -> u32 { return (flags[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu; }
fn ringVisible(t: u32, P: u32, W: u32, pos: u32, fl: u32) -> bool {
  let kp = t + W * ((P - 1u - t) / W);
  return pos - kp < W || flagAt(fl + t) != 0u;
}`;

/**
 * The same rule for the chunk's own keys (`fn chunkVisible(t, r, W, adm)`: chunk key t, query
 * at chunk row r): causal, and past the window only if admitted. The step's flags (u8, `admit`'s)
 * are read from scratch at byte adm + t (the host copies the layer's there: no binding more than the
 * 7 + arguments every device has), and only for keys past the window: a chunk within it reads none.
 */
export const CHUNK_VISIBILITY_WGSL = /* wgsl */ `
fn stepFlagAt(b: u32) -> u32 { return (scratch[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu; }
fn chunkVisible(t: u32, r: u32, W: u32, adm: u32) -> bool {
  return t <= r && (r - t < W || adm == ${NO_ADMIT}u || stepFlagAt(adm + t) != 0u);
}`;

/**
 * Query vectors per workgroup (at least minQueries: 32 for prefill blocks,
 * the group for decode rows) and keys per tile that fit `sharedBytes` of
 * workgroup memory.
 */
export function attentionShape(headDim: number, group: number, kvDType: KvDType, sharedBytes: number, minQueries = 32): AttentionShape {
  let numQueries = Math.max(minQueries, group);
  while ((numQueries * headDim) % NUM_THREADS !== 0) numQueries++;
  for (const tileKeys of [16, 8, 4]) {
    // keys (rows padded by one word), values, the block's queries, scores, and three floats per query
    const bytes = tileKeys * (headDim + 1) * 4 + tileKeys * headDim * 4 + numQueries * headDim * 4 + numQueries * tileKeys * 4 + numQueries * 12;
    if (bytes <= sharedBytes) return { headDim, group, kvDType, tileKeys, numQueries };
  }
  throw new Error(`paged attention: head dim ${headDim} does not fit ${sharedBytes} bytes of workgroup memory`);
}


/**
 * args: numItems, Hq, Hkv, vBase (words), scale (f32), firstPage (of the layer's pool part), then items at word 8.
 * Bindings: q f32 [rows, Hq, d], kFresh, vFresh f32 [rows, Hkv, d], pool, block tables i32,
 * ring flags u8 (packed), scratch (partials; Quest copies).
 */
export const attentionKernel = memoKernel(function attentionKernel(s: AttentionShape): Kernel {
  const { headDim: d, group: G, tileKeys: TK, numQueries: NQ, kvDType } = s;
  const ACC = (NQ * d) / NUM_THREADS;
  return kernelOf(`paged attention d${d} g${G} ${kvDType}`, ATTENTION_ACCESS, /* wgsl */ `
${ATTENTION_BINDINGS}
${HALF_WGSL}
${elementReader("kAt", "pool", kvDType)}
fn vAt(i: u32) -> f32 { return kAt(i + au(3u) * ${kvDType === "f32" ? 1 : 2}u); }
const D = ${d}u;
const G = ${G}u;
const TK = ${TK}u;
const NQ = ${NQ}u;
const NT = ${NUM_THREADS}u;
const MASKED = -3.0e38;
// NOTE: key rows padded by one word: the threads of a score step read different keys, one bank each
var<workgroup> ks: array<f32, ${TK * (d + 1)}>;
var<workgroup> vs: array<f32, ${TK * d}>;
var<workgroup> qs: array<f32, ${NQ * d}>;
var<workgroup> ps: array<f32, ${NQ * TK}>;
var<workgroup> mrow: array<f32, ${NQ}>;
var<workgroup> lrow: array<f32, ${NQ}>;
var<workgroup> alpha: array<f32, ${NQ}>;
${RING_VISIBILITY_WGSL}
${CHUNK_VISIBILITY_WGSL}
${PAGE_OF_WGSL}

@compute @workgroup_size(${NUM_THREADS}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let Hq = au(1u); let Hkv = au(2u); let scale = af(4u);
${ITEM_FIELDS_WGSL}
  let nv = qn * G;
  if (lid < NQ) { mrow[lid] = MASKED; lrow[lid] = 0.0; }
  // ---- the block's query vectors, read once
  for (var e = lid; e < nv * D; e += NT) {
    let v = e / D;
    qs[e] = q[((row0 + qr0 + v / G) * Hq + g * G + v % G) * D + e % D];
  }
  // NOTE: a loop over a private array (not unrolled source): small shaders compile fast everywhere
  var acc: array<f32, ${ACC}>;
  for (var tile = tile0; tile < tile1; tile++) {
    // ---- the tile's keys and values, widened to f32 (0 where no key)
    var kind = 2u; var first = 0u; var count = 0u;
    if (tile < ringTiles) { kind = 0u; first = tile * TK; count = min(TK, numRing - first); }
    else if (tile < ringTiles + globalTiles) { kind = 1u; first = (tile - ringTiles) * TK; count = min(TK, nG - first); }
    else { first = (tile - ringTiles - globalTiles) * TK; count = min(TK, T - first); }
    workgroupBarrier();
    for (var e = lid; e < TK * D; e += NT) {
      let j = e / D; let c = e % D;
      var kv = 0.0; var vv = 0.0;
      if (j < count) {
        let t = first + j;
        if (kind == 2u) {
          let at = ((row0 + t) * Hkv + g) * D + c;
          kv = kf[at]; vv = vf[at];
        } else {
          let at = ((pageOf(kind, t, tab, W, quest) - au(5u)) * 16u + t % 16u) * D + c;
          kv = kAt(at); vv = vAt(at);
        }
      }
      ks[j * (D + 1u) + c] = kv; vs[e] = vv;
    }
    workgroupBarrier();
    // ---- scores of every (query, key) pair, masked by the rule
    for (var pi = lid; pi < NQ * TK; pi += NT) {
      let v = pi / TK; let j = pi % TK;
      var sc = MASKED;
      if (v < nv && j < count) {
        let r = qr0 + v / G;
        let pos = P + r;
        let t = first + j;
        var visible = true;
        if (kind == 0u) {
          visible = ringVisible(t, P, W, pos, fl);
        } else if (kind == 2u) {
          visible = chunkVisible(t, r, W, adm);
        }
        if (visible) {
          var dotv = 0.0;
          for (var c = 0u; c < D; c++) { dotv += qs[v * D + c] * ks[j * (D + 1u) + c]; }
          sc = dotv * scale;
        }
      }
      ps[pi] = sc;
    }
    workgroupBarrier();
    // ---- online softmax per query
    if (lid < NQ) {
      var mt = MASKED;
      for (var j = 0u; j < TK; j++) { mt = max(mt, ps[lid * TK + j]); }
      let mOld = mrow[lid];
      if (mt > MASKED) {
        let mNew = max(mOld, mt);
        let a = select(exp(mOld - mNew), 0.0, mOld == MASKED);
        var sum = 0.0;
        for (var j = 0u; j < TK; j++) {
          let sj = ps[lid * TK + j];
          let p = select(exp(sj - mNew), 0.0, sj == MASKED);
          ps[lid * TK + j] = p;
          sum += p;
        }
        mrow[lid] = mNew; lrow[lid] = lrow[lid] * a + sum; alpha[lid] = a;
      } else {
        for (var j = 0u; j < TK; j++) { ps[lid * TK + j] = 0.0; }
        alpha[lid] = 1.0;
      }
    }
    workgroupBarrier();
    // ---- acc = acc * alpha + p . V (a hidden key's value never enters: 0 * inf would be NaN)
    for (var i = 0u; i < ${ACC}u; i++) {
      let e = lid + i * NT; let v = e / D; let c = e % D;
      var a = acc[i] * alpha[v];
      for (var j = 0u; j < TK; j++) { let p = ps[v * TK + j]; a += select(0.0, p * vs[j * D + c], p != 0.0); }
      acc[i] = a;
    }
  }
  // ---- partial rows: max, sum, acc
  let base = au(ib + ${IT_PARTIAL}u);
  workgroupBarrier();
  if (lid < nv) {
    scratch[(base + lid) * (D + 2u)] = bitcast<u32>(mrow[lid]);
    scratch[(base + lid) * (D + 2u) + 1u] = bitcast<u32>(lrow[lid]);
  }
  for (var i = 0u; i < ${ACC}u; i++) { let e = lid + i * NT; let v = e / D; if (v < nv) { scratch[(base + v) * (D + 2u) + 2u + e % D] = bitcast<u32>(acc[i]); } }
}`);
});
