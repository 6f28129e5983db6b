// Soft-gated causal attention, the parts over a block of scores (the N^2
// area): the host computes the block's scores and products with the matmul
// kernel (src/train/cpu/cpuAttention.ts); these kernels turn scores into
// probabilities and probability gradients into score gradients.
//
// A block holds `rows` query rows of one KV head's group against keys
// [0, nk), row-major with row stride ld >= nk. Row r is query token
// i = i0 + r / G (the G query heads of the group are interleaved per token).
// Key j is visible to query i iff j <= i; outside the local window
// (i - j >= W) its logit gets + logG[j] (the soft write gate, log g).
import { expF32x4, hsum } from "../../../backends/cpu/wasm/assembly/simdMath";

const NEG_INF: f32 = -Infinity;

/** logit = s * scale (+ logG[j] where i - j >= W) over [j0, j1), in place; returns the max. */
@inline function logitsRange(row: usize, j0: i32, j1: i32, scale: f32, logG: usize, withBias: bool, m: f32): f32 {
  const sv = f32x4.splat(scale);
  let mv = f32x4.splat(m);
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const o = <usize>j << 2;
    let v = f32x4.mul(v128.load(row + o), sv);
    if (withBias) v = f32x4.add(v, v128.load(logG + o));
    v128.store(row + o, v);
    mv = f32x4.max(mv, v);
  }
  m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; j < j1; j++) {
    const o = <usize>j << 2;
    let v = load<f32>(row + o) * scale;
    if (withBias) v += load<f32>(logG + o);
    store<f32>(row + o, v);
    m = max(m, v);
  }
  return m;
}

/** row[j] = exp(row[j] - shift) over [0, n); returns the sum. */
@inline function expRange(row: usize, n: i32, shift: f32): f32 {
  const sh = f32x4.splat(shift);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const e = expF32x4(f32x4.sub(v128.load(row + o), sh));
    v128.store(row + o, e);
    acc = f32x4.add(acc, e);
  }
  let sum = hsum(acc);
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const e = f32x4.extract_lane(expF32x4(f32x4.splat(load<f32>(row + o) - shift)), 0);
    store<f32>(row + o, e);
    sum += e;
  }
  return sum;
}

/** row[j] *= a over [0, n); row[j] = 0 over [n, nk). */
@inline function scaleAndClear(row: usize, n: i32, nk: i32, a: f32): void {
  const av = f32x4.splat(a);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(row + (<usize>j << 2), f32x4.mul(v128.load(row + (<usize>j << 2)), av));
  for (; j < n; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) * a);
  for (; j < nk; j++) store<f32>(row + (<usize>j << 2), 0);
}

/** Query token of row r, and how many keys it sees within [0, nk). */
@inline function visible(i: i32, nk: i32): i32 {
  return min(i + 1, nk);
}

/**
 * Scores to probabilities, in place: s f32 [rows, nk] holds q·k; afterwards
 * row r holds softmax over the visible keys (0 elsewhere) and lse[r] =
 * max + log(sum), the row's log-normalizer (kept for the backward pass).
 * logG: f32 [nk] (log g of the keys) or 0 for none (full attention).
 */
export function attnSoftmaxRows(s: usize, ld: i32, rows: i32, G: i32, i0: i32, nk: i32, scale: f32, W: i32, logG: usize, lse: usize): void {
  for (let r = 0; r < rows; r++) {
    const i = i0 + r / G;
    const row = s + <usize>r * ld * 4;
    const n = visible(i, nk);
    // keys [0, split) are outside the window (biased), [split, n) inside
    const split = logG ? max(0, min(n, i - W + 1)) : 0;
    let m = logitsRange(row, 0, split, scale, logG, true, NEG_INF);
    m = logitsRange(row, split, n, scale, 0, false, m);
    const sum = expRange(row, n, m);
    scaleAndClear(row, n, nk, 1 / sum);
    store<f32>(lse + (<usize>r << 2), m + Mathf.log(sum));
  }
}

/** The probabilities again from scores and the saved lse (the backward pass recomputes them). */
export function attnProbsRows(s: usize, ld: i32, rows: i32, G: i32, i0: i32, nk: i32, scale: f32, W: i32, logG: usize, lse: usize): void {
  for (let r = 0; r < rows; r++) {
    const i = i0 + r / G;
    const row = s + <usize>r * ld * 4;
    const n = visible(i, nk);
    const split = logG ? max(0, min(n, i - W + 1)) : 0;
    logitsRange(row, 0, split, scale, logG, true, NEG_INF);
    logitsRange(row, split, n, scale, 0, false, NEG_INF);
    expRange(row, n, load<f32>(lse + (<usize>r << 2)));
    scaleAndClear(row, n, nk, 1);
  }
}

/**
 * Score gradients, in place of dp: dS = P * (dP - D[r]) with D[r] = dO_r · O_r
 * (softmax's backward); where a key is outside the window its gate's log
 * gets the same gradient: dLogG[j] += dS[r, j] over those rows (dLogG may be 0).
 */
export function attnScoreGradRows(p: usize, dp: usize, ld: i32, rows: i32, G: i32, i0: i32, nk: i32, W: i32, D: usize, dLogG: usize): void {
  for (let r = 0; r < rows; r++) {
    const i = i0 + r / G;
    const pr = p + <usize>r * ld * 4, dr = dp + <usize>r * ld * 4;
    const n = visible(i, nk);
    const dv = f32x4.splat(load<f32>(D + (<usize>r << 2)));
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      v128.store(dr + o, f32x4.mul(v128.load(pr + o), f32x4.sub(v128.load(dr + o), dv)));
    }
    const d = f32x4.extract_lane(dv, 0);
    for (; j < n; j++) store<f32>(dr + (<usize>j << 2), load<f32>(pr + (<usize>j << 2)) * (load<f32>(dr + (<usize>j << 2)) - d));
    for (; j < nk; j++) store<f32>(dr + (<usize>j << 2), 0);
    if (dLogG) {
      const split = max(0, min(n, i - W + 1));
      let k = 0;
      for (; k + 4 <= split; k += 4) {
        const o = <usize>k << 2;
        v128.store(dLogG + o, f32x4.add(v128.load(dLogG + o), v128.load(dr + o)));
      }
      for (; k < split; k++) store<f32>(dLogG + (<usize>k << 2), load<f32>(dLogG + (<usize>k << 2)) + load<f32>(dr + (<usize>k << 2)));
    }
  }
}

/** dst[c, r] = src[r, c] for r < rows, c < cols; row strides in floats. Tiled so both sides stay in cache. */
export function transpose(dst: usize, src: usize, rows: i32, cols: i32, srcStride: i32, dstStride: i32): void {
  const TILE = 16;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const s = src + (<usize>r * srcStride << 2);
        for (let c = c0; c < c1; c++) store<f32>(dst + ((<usize>c * dstStride + r) << 2), load<f32>(s + (<usize>c << 2)));
      }
    }
  }
}
