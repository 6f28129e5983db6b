// Per-block helpers of the paged attention (pagedAttention.ts): 16-bit pages
// decoded to f32 (into the thread's scratch, before use), visibility masks,
// and the online-softmax step under a mask.
import { expF32, expF32x4, hsum } from "./simdMath";

/** Keys per page, and so per key block. */
export const PAGE: i32 = 16;

export const KV_F32: i32 = 0;
export const KV_F16: i32 = 1;
export const KV_BF16: i32 = 2;
/** f16 pages known to hold no infinity or NaN (src/backends/cpu/cpuKvOps.ts tracks the writes). */
export const KV_F16_FINITE: i32 = 3;

// ---- 16-bit pages to f32 -------------------------------------------------------

/** f16 bits (one per i32 lane) to f32, exact for normals, subnormals, infinities and NaN. */
@inline function f16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  // NOTE: with the exponent field moved to f32's place, multiplying by 2^112
  // rebiases it (15 -> 127) and turns f16 subnormals into f32 normals exactly.
  const x = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(5.192296858534828e33));
  // exponent 31 (inf / NaN) lands at >= 2^16 (the largest finite half is 65504): saturate the exponent
  const special = v128.and(f32x4.ge(x, f32x4.splat(65536)), i32x4.splat(0x7f800000));
  return v128.or(v128.or(x, special), sign);
}

/** f16x4ToF32 for finite halves only (exact for normals, subnormals and zeros): a third fewer operations. */
@inline function finiteF16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  return v128.or(f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(5.192296858534828e33)), sign);
}

@inline function f16ToF32(h: u32): f32 {
  return f32x4.extract_lane(f16x4ToF32(i32x4.splat(h)), 0);
}

/** dst = numElems 16-bit values at src (f16 or bf16 bits) as f32. */
export function decodeRows(dst: usize, src: usize, numElems: i32, dtype: i32): void {
  let i = 0;
  if (dtype == KV_BF16) {
    for (; i + 4 <= numElems; i += 4) v128.store(dst + (<usize>i << 2), i32x4.shl(v128.load16x4_u(src + (<usize>i << 1)), 16));
    for (; i < numElems; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
  } else if (dtype == KV_F16_FINITE) {
    for (; i + 4 <= numElems; i += 4) v128.store(dst + (<usize>i << 2), finiteF16x4ToF32(v128.load16x4_u(src + (<usize>i << 1))));
    for (; i < numElems; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(load<u16>(src + (<usize>i << 1))));
  } else {
    for (; i + 4 <= numElems; i += 4) v128.store(dst + (<usize>i << 2), f16x4ToF32(v128.load16x4_u(src + (<usize>i << 1))));
    for (; i < numElems; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(load<u16>(src + (<usize>i << 1))));
  }
}

/** Copies numRows rows of d floats from a strided source (stride bytes apart) to a dense [numRows, d] block. */
export function gatherRows(dst: usize, src: usize, stride: usize, numRows: i32, d: i32): void {
  const rowBytes = <usize>d << 2;
  for (let j = 0; j < numRows; j++) memory.copy(dst + <usize>j * rowBytes, src + <usize>j * stride, rowBytes);
}

// ---- visibility masks ----------------------------------------------------------
// A block is up to BLOCK_PAGES pages; masks[qi] (u64) has bit 16k + j set when
// query qi sees key j of the block's page k. Each function ORs one page's bits
// in at `shift` = 16k and returns the OR over queries (0: nobody sees the page).

/** Pages per key block: the softmax step and the running-sum rescale happen once per block. */
export const BLOCK_PAGES: i32 = 4;

/**
 * Ring offsets o0 .. o0 + n of a head holding numCached tokens, for queries at
 * positions pos0 .. pos0 + nq (docs/design.md §3: P <= pos and (pos - P < W or
 * admitted)). Offset o holds position o + W * floor((numCached - 1 - o) / W).
 */
export function ringMasks(masks: usize, o0: i32, admitted: usize, n: i32, numCached: i32, pos0: i32, nq: i32, W: i32, shift: i32): u32 {
  let any: u32 = 0;
  for (let qi = 0; qi < nq; qi++) {
    const pos = pos0 + qi;
    let m: u32 = 0;
    for (let j = 0; j < n; j++) {
      const o = o0 + j;
      const p = o + W * ((numCached - 1 - o) / W);
      const visible = p <= pos && (pos - p < W || load<u8>(admitted + <usize>j) != 0);
      m |= <u32>visible << j;
    }
    orMask(masks, qi, m, shift);
    any |= m;
  }
  return any;
}

/**
 * The chunk's keys j0 .. j0 + n, causally: query r0 + qi sees j <= r0 + qi,
 * and past the window only if admitted (`admitted`: the flag of key j0, or
 * 0 when every chunk key is visible causally).
 */
export function freshMasks(masks: usize, j0: i32, n: i32, r0: i32, nq: i32, shift: i32, admitted: usize, W: i32): u32 {
  let any: u32 = 0;
  for (let qi = 0; qi < nq; qi++) {
    const r = r0 + qi;
    const count = min(n, r + 1 - j0);
    let m: u32 = count > 0 ? <u32>((1 << count) - 1) : 0;
    // NOTE: keys j < r - W + 1 are beyond the window; a step of at most W rows has none
    const far = min(count, r - W + 1 - j0);
    if (admitted != 0) for (let j = 0; j < far; j++) if (load<u8>(admitted + <usize>j) == 0) m &= ~(<u32>1 << j);
    orMask(masks, qi, m, shift);
    any |= m;
  }
  return any;
}

/** Every query sees all n keys (global pages). */
export function fullMasks(masks: usize, n: i32, nq: i32, shift: i32): u32 {
  const m = <u32>((1 << n) - 1);
  for (let qi = 0; qi < nq; qi++) orMask(masks, qi, m, shift);
  return m;
}

@inline function orMask(masks: usize, qi: i32, m: u32, shift: i32): void {
  const at = masks + (<usize>qi << 3);
  store<u64>(at, load<u64>(at) | (<u64>m << <u64>shift));
}

// ---- online softmax under a mask -----------------------------------------------

/** Lanes j .. j + 4 of a mask as an i32x4 lane mask (all ones where visible). */
@inline function visibleLanes(mask: u64, j: i32): v128 {
  return i32x4.ne(v128.and(i32x4.splat(<i32>(mask >> <u64>j)), i32x4(1, 2, 4, 8)), i32x4.splat(0));
}

/**
 * Online-softmax step of one row over the scores s[0 .. numKeys) of a block,
 * of which only the keys in `mask` (non-zero) are visible: with m, l at
 * state[0], state[1], raises m to the visible max, writes p[j] = e^(s[j] - m)
 * for visible keys and exactly 0 for the others (expF32x4(-inf) is ~1e-38,
 * not 0), updates l and returns alpha = e^(mOld - m).
 * NOTE: masked lanes are replaced before they reach max or sum, so stale or
 * non-finite scores there (pages nobody of the pair sees are not scored) never matter.
 */
export function softmaxMasked(s: usize, mask: u64, numKeys: i32, state: usize): f32 {
  const negInf = f32x4.splat(-Infinity);
  // groups of 4 keys all visible skip the lane masks (under full attention nearly all of them)
  const dense = mask == (numKeys >= 64 ? <u64>-1 : (<u64>1 << <u64>numKeys) - 1) ? numKeys & ~3 : 0;
  let maxv = negInf;
  let j = 0;
  // NOTE: pmax is one instruction on x64; max pays for NaN and ±0 rules that do not matter here
  for (; j < dense; j += 4) maxv = f32x4.pmax(maxv, v128.load(s + (<usize>j << 2)));
  for (; j < numKeys; j += 4) maxv = f32x4.pmax(maxv, v128.bitselect(v128.load(s + (<usize>j << 2)), negInf, visibleLanes(mask, j)));
  const mOld = load<f32>(state);
  const m = max(max(max(f32x4.extract_lane(maxv, 0), f32x4.extract_lane(maxv, 1)), max(f32x4.extract_lane(maxv, 2), f32x4.extract_lane(maxv, 3))), mOld);
  const mv = f32x4.splat(m);
  let sumv = f32x4.splat(0);
  for (j = 0; j < dense; j += 4) {
    const p = expF32x4(f32x4.sub(v128.load(s + (<usize>j << 2)), mv));
    v128.store(s + (<usize>j << 2), p);
    sumv = f32x4.add(sumv, p);
  }
  for (; j < numKeys; j += 4) {
    const p = v128.and(expF32x4(f32x4.sub(v128.load(s + (<usize>j << 2)), mv)), visibleLanes(mask, j));
    v128.store(s + (<usize>j << 2), p);
    sumv = f32x4.add(sumv, p);
  }
  const alpha = expF32(mOld - m);
  store<f32>(state, m);
  store<f32>(state, load<f32>(state, 4) * alpha + hsum(sumv), 4);
  return alpha;
}
