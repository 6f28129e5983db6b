/**
 * @module backends/webgpu/kernels/policyKernels
 *
 * The KV policies' ops (docs/design.md §3) on the GPU: admission by each
 * sequence's rule (flags to the step's tensor, u8 packed in words, written
 * through atomics), the flags copied into the ring's after the attention,
 * Quest's per-page key bounds and page choice (a radix select of the
 * budget's best pages, ties to the lower index, then an in-order
 * compaction). SnapKV's kernels are in
 * snapKvKernels.ts. cpu/cpuPolicyOps.ts is the reference.
 */
import type { KvDType } from "../../backend.js";
import { SEQ_ADMISSION, SEQ_ADMISSION_ARG, SEQ_ADMISSION_SEED, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../../stepLayout.js";
import type { Kernel } from "../gpuRuntime.js";
import { elementReader, HALF_WGSL, MAIN_ARGS, WG_INDEX, memoKernel, kernelOf } from "./wgslCommon.js";

/** WGSL `fn name(b, v)`: byte b of `arr` (atomic u32 words) = v; atomics, as neighbouring bytes belong to other invocations. */
const SET_BYTE_WGSL = (name: string, arr: string) =>
  `fn ${name}(b: u32, v: u32) { let sh = (b & 3u) * 8u; atomicAnd(&${arr}[b >> 2u], ~(0xffu << sh)); atomicOr(&${arr}[b >> 2u], v << sh); }`;


/**
 * Admission, one workgroup per (layer, sequence, KV head): flags[offset + (i * H + h) * stride + row] =
 * admitted (u8) for layer first + i. The ring's flags are writeRingFlagsKernel's, after the step's
 * last layer (the attention still reads the old ones).
 * args: offset, stride, first layer, H, hasScores, workgroups a layer (sequences x H)
 */
export const admitKernel = memoKernel(function admitKernel(): Kernel {
  return kernelOf("admit", ["rw", "ro", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> seqs: array<i32>;
${SET_BYTE_WGSL("setFlag", "flags")}
fn ahash(seed: u32, layer: u32, head: u32, pos: u32) -> u32 {
  var h = (seed ^ 0x9e3779b9u) * 0x85ebca6bu;
  h = (h ^ (layer + 0x7f4a7c15u) ^ (h >> 15u)) * 0xc2b2ae35u;
  h = (h ^ (head + 0x165667b1u) ^ (h >> 13u)) * 0x27d4eb2fu;
  h = (h ^ (pos + 0x61c88647u) ^ (h >> 16u)) * 0x85ebca6bu;
  h ^= h >> 13u; h = h * 0xc2b2ae35u; h ^= h >> 16u;
  return h;
}
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let H = au(3u);
  // NOTE: au(5u) workgroups a layer, layers [au(2u), ...) one after another
  let li = wg / au(5u); let s = (wg % au(5u)) / H; let h = wg % H;
  let f = s * ${SEQ_FIELDS}u;
  let row0 = u32(seqs[f + ${SEQ_ROW_START}u]); let n = u32(seqs[f + ${SEQ_NUM_ROWS}u]); let start = u32(seqs[f + ${SEQ_START_POS}u]);
  let kind = seqs[f + ${SEQ_ADMISSION}u]; let arg = seqs[f + ${SEQ_ADMISSION_ARG}u]; let seed = bitcast<u32>(seqs[f + ${SEQ_ADMISSION_SEED}u]);
  let layer = au(2u) + li;
  for (var t = lid; t < n; t += 64u) {
    let pos = start + t;
    let at = au(0u) + (li * H + h) * au(1u) + row0 + t;
    var a = 0u;
    switch (kind) {
      case 0: { a = 1u; }
      case 2: { a = select(0u, 1u, i32(pos) < arg); }
      case 3: { a = select(0u, 1u, ahash(seed, layer, h, pos) < bitcast<u32>(arg)); }
      case 4: { a = select(0u, 1u, au(4u) == 1u && scores[at] > bitcast<f32>(arg)); }
      default: { a = 0u; }
    }
    setFlag(at, a);
  }
}`);
});

/**
 * The step's flags into the ring's, one workgroup per (sequence, layer x KV head) of all layers, after the
 * step's last layer: the sequence's last min(T, W) rows take ring offsets pos mod W (a step longer than W
 * wrote its first tokens to global slots). ring[((slot * L * H + lh) * maxWindow + pos % W] = flags[lh * stride + row].
 * args: stride, L * H, maxWindow, workgroups (numSeqs * L * H)
 */
export const writeRingFlagsKernel = memoKernel(function writeRingFlagsKernel(): Kernel {
  return kernelOf("writeRingFlags", ["ro", "ro", "rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read> flags: array<u32>;
@group(0) @binding(1) var<storage, read> seqs: array<i32>;
@group(0) @binding(2) var<storage, read_write> ring: array<atomic<u32>>;
${SET_BYTE_WGSL("setRing", "ring")}
fn flagAt(b: u32) -> u32 { return (flags[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu; }
@compute @workgroup_size(64) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  // NOTE: a grid past the device's limit per dimension is rounded up to whole rows of workgroups
  if (wg >= au(3u)) { return; }
  let LH = au(1u);
  let s = wg / LH; let lh = wg % LH;
  let f = s * ${SEQ_FIELDS}u;
  let row0 = u32(seqs[f + ${SEQ_ROW_START}u]); let n = u32(seqs[f + ${SEQ_NUM_ROWS}u]); let start = u32(seqs[f + ${SEQ_START_POS}u]);
  let W = u32(seqs[f + ${SEQ_WINDOW}u]); let slot = u32(seqs[f + ${SEQ_SLOT}u]);
  let ringBase = (slot * LH + lh) * au(2u);
  // NOTE: from the first row whose ring offset the step's later rows do not take again
  for (var t = n - min(n, W) + lid; t < n; t += 64u) {
    setRing(ringBase + (start + t) % W, flagAt(lh * au(0u) + row0 + t));
  }
}`);
});

/** bounds f32 [part pages, 2, d]: min then max of the first n keys of pages[i] = (page, n), pages in the part. args: first, count, d, 0, firstPage, numPages */
export const pageBoundsKernel = memoKernel(function pageBoundsKernel(dtype: KvDType): Kernel {
  return kernelOf(`pageBounds ${dtype}`, ["rw", "ro", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> bounds: array<f32>;
@group(0) @binding(1) var<storage, read> pool: array<u32>;
@group(0) @binding(2) var<storage, read> pages: array<i32>;
${HALF_WGSL}
${elementReader("kAt", "pool", dtype)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let d = au(2u);
  let i = wg * 256u + lid;
  if (i >= au(1u) * d) { return; }
  let e = au(0u) + i / d; let c = i % d;
  let page = u32(pages[2u * e]) - au(4u); let n = u32(pages[2u * e + 1u]);
  if (page >= au(5u)) { return; }
  let infBits = 0x7f800000u + au(3u);
  var lo = bitcast<f32>(infBits); var hi = -lo;
  for (var o = 0u; o < n; o++) {
    let k = kAt((page * 16u + o) * d + c);
    if (k < lo) { lo = k; }
    if (k > hi) { hi = k; }
  }
  bounds[page * 2u * d + c] = lo;
  bounds[page * 2u * d + d + c] = hi;
}`);
});

/**
 * Quest's choice for one (decode row, KV head) per workgroup. Records (args
 * from word 8, 6 words): [q row, budget, global tokens, block-table word of
 * the head's global pages, output index s * H + g, scratch word of its scores].
 * Bounds are the layer's pool part's (local pages); chosen pages are global ids.
 * args: numRecords, Hq, d, group, stride, (5: +inf bits offset), firstPage
 */
export const questSelectKernel = memoKernel(function questSelectKernel(): Kernel {
  return kernelOf("questSelect", ["ro", "ro", "ro", "rw", "rw", "rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> bounds: array<f32>;
@group(0) @binding(2) var<storage, read> tables: array<i32>;
@group(0) @binding(3) var<storage, read_write> chosen: array<i32>;
@group(0) @binding(4) var<storage, read_write> numTokens: array<i32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<u32>;
var<workgroup> red: array<u32, 256>;
fn sumU(lid: u32, v: u32) -> u32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { red[lid] += red[lid + k]; } workgroupBarrier(); }
  return workgroupUniformLoad(&red[0]);
}
/** Inclusive prefix sum of v over the workgroup. */
fn scanU(lid: u32, v: u32) -> u32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = 1u; k < 256u; k <<= 1u) {
    let x = select(0u, red[lid - k], lid >= k);
    workgroupBarrier();
    red[lid] += x;
    workgroupBarrier();
  }
  let r = red[lid];
  workgroupBarrier();
  return r;
}
fn orderKey(x: f32) -> u32 { let b = bitcast<u32>(x); return select(b | 0x80000000u, ~b, (b >> 31u) == 1u); }
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let Hq = au(1u); let d = au(2u); let G = au(3u); let stride = au(4u);
  let rec = 8u + wg * 6u;
  let row = au(rec); let budget = au(rec + 1u); let nG = au(rec + 2u); let gp = au(rec + 3u); let outIdx = au(rec + 4u); let sb = au(rec + 5u);
  let g = outIdx % (Hq / G);
  let numFull = nG / 16u; let partial = nG % 16u;
  let maxFull = select(0u, (budget - partial) / 16u, budget > partial);
  let out = outIdx * stride;
  if (numFull <= maxFull) {
    for (var i = lid; i < numFull; i += 256u) { chosen[out + i] = tables[gp + i]; }
    if (lid == 0u) {
      if (partial > 0u) { chosen[out + numFull] = tables[gp + numFull]; }
      numTokens[outIdx] = i32(nG);
    }
    return;
  }
  let negInf = 0x7f800000u + au(5u);
  // ---- upper bounds of q.k per full page, max over the group's query heads
  for (var i = lid; i < numFull; i += 256u) {
    let page = u32(tables[gp + i]) - au(6u);
    var best = -bitcast<f32>(negInf);
    for (var gh = 0u; gh < G; gh++) {
      let qb = (row * Hq + g * G + gh) * d;
      var sum = 0.0;
      for (var c = 0u; c < d; c++) {
        let qc = q[qb + c];
        sum += max(qc * bounds[page * 2u * d + c], qc * bounds[page * 2u * d + d + c]);
      }
      best = max(best, sum);
    }
    scratch[sb + i] = orderKey(best);
  }
  storageBarrier();
  workgroupBarrier();
  // ---- the maxFull-th largest key (radix select), then ties by list index
  var t = 0u;
  for (var bit = 31i; bit >= 0i; bit--) {
    let cand = t | (1u << u32(bit));
    var c = 0u;
    for (var i = lid; i < numFull; i += 256u) { c += select(0u, 1u, scratch[sb + i] >= cand); }
    if (sumU(lid, c) >= maxFull) { t = cand; }
  }
  var gt = 0u;
  for (var i = lid; i < numFull; i += 256u) { gt += select(0u, 1u, scratch[sb + i] > t); }
  let needTies = maxFull - sumU(lid, gt);
  // ---- in list order: chosen pages, then the partial page
  var ties = 0u; var taken = 0u;
  for (var b0 = 0u; b0 < numFull; b0 += 256u) {
    let i = b0 + lid;
    var key = 0u;
    if (i < numFull) { key = scratch[sb + i]; }
    let isTie = i < numFull && key == t;
    let tieRank = scanU(lid, select(0u, 1u, isTie)) + ties;
    let pick = i < numFull && (key > t || (isTie && tieRank <= needTies));
    let at = scanU(lid, select(0u, 1u, pick)) + taken;
    if (pick) { chosen[out + at - 1u] = tables[gp + i]; }
    ties = ties + sumU(lid, select(0u, 1u, isTie));
    taken = taken + sumU(lid, select(0u, 1u, pick));
  }
  if (lid == 0u) {
    if (partial > 0u) { chosen[out + maxFull] = tables[gp + numFull]; }
    numTokens[outIdx] = i32(maxFull * 16u + partial);
  }
}`);
});
