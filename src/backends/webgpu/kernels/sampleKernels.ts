/**
 * @module backends/webgpu/kernels/sampleKernels
 *
 * Sampling, one workgroup per sampled row, with cpu/sampleRow.ts's exact
 * rule and no sort: logits are compared as order-preserving u32 keys, and
 * each cut (the k-th largest, the top-p head, the draw's place in the
 * inverse CDF) is found by a bitwise search over keys of the count or
 * weight of candidates at or above a key, each step one pass over the row,
 * then resolved among equal logits by id (a binary search over ids).
 * Greedy is one pass (max key, then the lowest id holding it); a row
 * holding a NaN gives -1. Weights and sums are f32.
 * Min-p drops the candidates whose weight (relative to the largest, after
 * temperature) is below min_p, before top-p.
 * args: numRows, V; params f32 [n, SAMPLE_FIELDS]
 */
import { SAMPLE_FIELDS, SAMPLE_MIN_P } from "../../stepLayout.js";
import type { Kernel } from "../gpuRuntime.js";
import { MAIN_ARGS, memoKernel, range, WG_INDEX } from "./wgslCommon.js";

let cached: Kernel | null = null;
let cachedSmall: Kernel | null = null;

/** Logits each thread loads at once in the greedy pass. */
const GREEDY_ROUND = 8;

/** Largest vocabulary sampled by the sequential path. */
export const SMALL_VOCAB = 256;

/**
 * Rows of at most SMALL_VOCAB logits: one thread runs sampleRow.ts's
 * algorithm literally (insertion sort, top-k, weights, top-p, inverse CDF),
 * the way a software adapter runs it fastest.
 */
export const smallSampleKernel = memoKernel(function smallSampleKernel(): Kernel {
  return (cachedSmall ??= {
    label: "sample (small vocabulary)",
    bindings: ["rw", "ro", "ro"],
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> ids: array<i32>;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
var<workgroup> ord: array<u32, ${256}>;
var<workgroup> w: array<f32, ${256}>;
@compute @workgroup_size(1) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let V = au(1u);
  let pb = wg * ${SAMPLE_FIELDS}u;
  let base = u32(params[pb]) * V;
  let temp = params[pb + 1u]; let topK = u32(params[pb + 2u]); let topP = params[pb + 3u]; let u = params[pb + 4u];
  let minP = params[pb + ${SAMPLE_MIN_P}u];
  for (var i = 0u; i < V; i++) {
    if ((logits[base + i] & 0x7fffffffu) > 0x7f800000u) { ids[wg] = -1; return; }
  }
  // ids by logit, descending, ties by id (insertion sort is stable)
  for (var i = 0u; i < V; i++) {
    let li = bitcast<f32>(logits[base + i]);
    var j = i;
    while (j > 0u && bitcast<f32>(logits[base + ord[j - 1u]]) < li) { ord[j] = ord[j - 1u]; j--; }
    ord[j] = i;
  }
  if (temp == 0.0) { ids[wg] = i32(ord[0]); return; }
  var n = V;
  if (topK > 0u && topK < V) { n = topK; }
  let mx = bitcast<f32>(logits[base + ord[0]]);
  var total = 0.0;
  for (var i = 0u; i < n; i++) { w[i] = exp((bitcast<f32>(logits[base + ord[i]]) - mx) / temp); total += w[i]; }
  var keep = n;
  if (minP > 0.0) {
    // weights fall along the sorted ids and the first is 1: the cut is a prefix
    while (keep > 1u && w[keep - 1u] < minP) { keep--; total -= w[keep]; }
  }
  if (topP < 1.0) {
    var mass = 0.0;
    for (var i = 0u; i < keep; i++) { mass += w[i] / total; if (mass >= topP) { keep = i + 1u; break; } }
  }
  var kept = 0.0;
  for (var i = 0u; i < keep; i++) { kept += w[i]; }
  var r = u * kept;
  for (var i = 0u; i < keep; i++) { r -= w[i]; if (r < 0.0) { ids[wg] = i32(ord[i]); return; } }
  ids[wg] = i32(ord[keep - 1u]);
}`,
  });
});

export const sampleKernel = memoKernel(function sampleKernel(): Kernel {
  return (cached ??= {
    label: "sample",
    bindings: ["rw", "ro", "ro"],
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> ids: array<i32>;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
var<workgroup> ru: array<u32, 256>;
var<workgroup> rf: array<f32, 256>;
fn sumU(lid: u32, v: u32) -> u32 {
  ru[lid] = v; workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { ru[lid] += ru[lid + k]; } workgroupBarrier(); }
  return workgroupUniformLoad(&ru[0]);
}
fn maxU(lid: u32, v: u32) -> u32 {
  ru[lid] = v; workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { ru[lid] = max(ru[lid], ru[lid + k]); } workgroupBarrier(); }
  return workgroupUniformLoad(&ru[0]);
}
fn minU(lid: u32, v: u32) -> u32 {
  ru[lid] = v; workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { ru[lid] = min(ru[lid], ru[lid + k]); } workgroupBarrier(); }
  return workgroupUniformLoad(&ru[0]);
}
fn sumF(lid: u32, v: f32) -> f32 {
  rf[lid] = v; workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { rf[lid] += rf[lid + k]; } workgroupBarrier(); }
  return workgroupUniformLoad(&rf[0]);
}
fn keyOf(b: u32) -> u32 { return select(b | 0x80000000u, ~b, (b >> 31u) == 1u); }
fn logitOfKey(k: u32) -> f32 { return bitcast<f32>(select(~k, k & 0x7fffffffu, (k >> 31u) == 1u)); }

// the row being sampled and its cuts so far (uniform per workgroup)
struct Row { base: u32, V: u32, mx: f32, temp: f32, kKey: u32, kId: u32, pKey: u32, pId: u32, minP: f32 }
fn key(R: Row, i: u32) -> u32 { return keyOf(logits[R.base + i]); }
fn weight(R: Row, i: u32) -> f32 { return exp((bitcast<f32>(logits[R.base + i]) - R.mx) / R.temp); }
fn isCand(R: Row, i: u32) -> bool {
  let k = key(R, i);
  return (k > R.kKey || (k == R.kKey && i <= R.kId)) && (R.minP <= 0.0 || weight(R, i) >= R.minP);
}
fn isKept(R: Row, i: u32) -> bool { let k = key(R, i); return isCand(R, i) && (k > R.pKey || (k == R.pKey && i <= R.pId)); }
/** 0: all ids; 1: candidates; 2: kept. */
fn inSet(R: Row, which: u32, i: u32) -> bool { return which == 0u || (which == 1u && isCand(R, i)) || (which == 2u && isKept(R, i)); }
fn countAtLeast(R: Row, lid: u32, which: u32, t: u32) -> u32 {
  var c = 0u;
  for (var i = lid; i < R.V; i += 256u) { c += select(0u, 1u, inSet(R, which, i) && key(R, i) >= t); }
  return sumU(lid, c);
}
fn massAtLeast(R: Row, lid: u32, which: u32, t: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < R.V; i += 256u) { if (inSet(R, which, i) && key(R, i) >= t) { s += weight(R, i); } }
  return sumF(lid, s);
}
/** The n-th smallest id (n >= 1) of the set holding key t. */
fn nthTie(R: Row, lid: u32, which: u32, t: u32, n: u32) -> u32 {
  var lo = 0u; var hi = R.V - 1u;
  loop {
    if (lo >= hi) { break; }
    let mid = (lo + hi) / 2u;
    var c = 0u;
    for (var i = lid; i <= mid; i += 256u) { c += select(0u, 1u, inSet(R, which, i) && key(R, i) == t); }
    if (sumU(lid, c) >= n) { hi = mid; } else { lo = mid + 1u; }
  }
  return lo;
}

@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let V = au(1u);
  let pb = wg * ${SAMPLE_FIELDS}u;
  let base = u32(params[pb]) * V;
  let temp = params[pb + 1u];
  // NOTE: min-p applies after top-k: R.minP is set once the k-th key is known
  var R = Row(base, V, 0.0, temp, 0u, V, 0u, V, 0.0);
  let topK = u32(params[pb + 2u]);
  let topP = params[pb + 3u];
  let u = params[pb + 4u];
  // ---- the largest key and its lowest id in one pass; rounds of ${GREEDY_ROUND} loads in flight
  // (a thread's ids rise, so the first id of its best key is the one it keeps)
  var best = 0u; var first = 0xffffffffu; var nan = 0u;
  for (var i0 = lid; i0 < V; i0 += ${256 * GREEDY_ROUND}u) {
${range(GREEDY_ROUND).map((j) => `    let b${j} = logits[base + min(i0 + ${256 * j}u, V - 1u)];`).join("\n")}
${range(GREEDY_ROUND).map((j) => `    if (i0 + ${256 * j}u < V) {
      if ((b${j} & 0x7fffffffu) > 0x7f800000u) { nan = 1u; } else if (keyOf(b${j}) > best) { best = keyOf(b${j}); first = i0 + ${256 * j}u; }
    }`).join("\n")}
  }
  let maxKey = maxU(lid, best);
  if (maxU(lid, nan) != 0u) { if (lid == 0u) { ids[wg] = -1; } return; }
  let argmax = minU(lid, select(0xffffffffu, first, best == maxKey));
  if (temp == 0.0) { if (lid == 0u) { ids[wg] = i32(argmax); } return; }
  R.mx = logitOfKey(maxKey);
  let mx = R.mx;
  // ---- top-k: the k-th largest key, ties by id
  if (topK > 0u && topK < V) {
    var t = 0u;
    for (var bit = 31i; bit >= 0i; bit--) { let c = t | (1u << u32(bit)); if (countAtLeast(R, lid, 0u, c) >= topK) { t = c; } }
    let above = select(countAtLeast(R, lid, 0u, t + 1u), 0u, t == 0xffffffffu);
    let kId = nthTie(R, lid, 0u, t, topK - above);
    R.kKey = t; R.kId = kId;
  }
  R.minP = params[pb + ${SAMPLE_MIN_P}u];
  // ---- top-p: the shortest head of the sorted candidates whose mass reaches p
  let total = massAtLeast(R, lid, 1u, 0u);
  if (topP < 1.0) {
    let goal = topP * total;
    var t = 0u;
    for (var bit = 31i; bit >= 0i; bit--) { let c = t | (1u << u32(bit)); if (massAtLeast(R, lid, 1u, c) >= goal) { t = c; } }
    let above = select(massAtLeast(R, lid, 1u, t + 1u), 0.0, t == 0xffffffffu);
    let ties = countAtLeast(R, lid, 1u, t) - select(countAtLeast(R, lid, 1u, t + 1u), 0u, t == 0xffffffffu);
    let w = exp((logitOfKey(t) - mx) / temp);
    let n = clamp(u32(ceil((goal - above) / w)), 1u, max(ties, 1u));
    let pId = nthTie(R, lid, 1u, t, n);
    R.pKey = t; R.pId = pId;
  }
  // ---- the draw: the first kept id (in sorted order) whose cumulative weight exceeds u * kept
  let kept = massAtLeast(R, lid, 2u, 0u);
  let r = u * kept;
  var chosen = 0u;
  var t = 0u;
  var found = false;
  for (var bit = 31i; bit >= 0i; bit--) { let c = t | (1u << u32(bit)); if (massAtLeast(R, lid, 2u, c) > r) { t = c; found = true; } }
  if (massAtLeast(R, lid, 2u, 0u) > r) {
    let above = select(massAtLeast(R, lid, 2u, t + 1u), 0.0, t == 0xffffffffu);
    let ties = countAtLeast(R, lid, 2u, t) - select(countAtLeast(R, lid, 2u, t + 1u), 0u, t == 0xffffffffu);
    let w = exp((logitOfKey(t) - mx) / temp);
    let n = clamp(u32(floor((r - above) / w)) + 1u, 1u, max(ties, 1u));
    chosen = nthTie(R, lid, 2u, t, n);
  } else {
    // rounding left the draw past the kept mass: the last kept id in sorted order
    var lowest = 0xffffffffu;
    for (var i = lid; i < V; i += 256u) { if (isKept(R, i)) { lowest = min(lowest, key(R, i)); } }
    let lk = minU(lid, lowest);
    var last = 0u;
    for (var i = lid; i < V; i += 256u) { if (isKept(R, i) && key(R, i) == lk) { last = max(last, i); } }
    chosen = maxU(lid, last);
  }
  if (lid == 0u) { ids[wg] = i32(chosen); }
}`,
  });
});
