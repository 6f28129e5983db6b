// out[M, N] = x[M, K] · w[N, K]^T (+ bias[N]), w in f32 or bf16.
//
// Both operands are K-contiguous, so every output is a dot product along K:
// SIMD runs over K (4 lanes) and each micro-kernel keeps a block of outputs in
// registers, reducing lanes only once at the end. A micro-kernel covers the
// first kVec columns (K & ~3; K & ~7 for bf16); the K tail is added afterwards
// by addKTail so the hot loops carry no masking.
//
// Blocking (measured with src/dev/kernelBench.ts, M=256, 1 thread, Zen 3):
// 4×2 ~28 GFLOP/s f32 / ~26 bf16; 2×4 ~29 / ~23 (twice the bf16 widening per
// flop); 4×4, 3×4, 4×3 and 6×2 ~18-21: 12+ accumulators spill. Decode (M=1)
// uses 1×4, level with 1×8. For bf16, 1×4 widens 8 weights from one load by
// interleaving zero half-words below them (punpcklwd/hwd): ~30% faster than
// 2 × (load16x4_u + shl), which 4×2 keeps since the extra registers spill
// there. Unrolling K by 8 for f32 measured ~25% slower (V8 spills address
// registers). x is tiled by MC rows so a tile stays in L2 while w streams
// past; sizing MC from K measured no better.
//
// The weight type W is u16 (bf16 bit patterns) or f32, resolved at compile
// time: each kernel is instantiated once per dtype.
import { hsum, hsum4, madd } from "./simdMath";

/** Rows of x per cache tile: MC × K floats of x (96-256 KiB here) stay in L2 while w streams past. */
const MC: i32 = 64;

/** Four consecutive weights widened to f32x4. bf16 is the top half of an f32: zero-extend, shift up. */
@inline function loadW4<W>(p: usize): v128 {
  if (sizeof<W>() == 2) return i32x4.shl(v128.load16x4_u(p), 16);
  return v128.load(p);
}

/**
 * acc + v·w[0..4) + vh·w[4..8) lane-wise, for 8 bf16 weights in one vector: interleaving
 * zero half-words below them (punpcklwd / punpckhwd) makes each an f32.
 */
@inline function maddBf16x8(v: v128, vh: v128, w: v128, acc: v128): v128 {
  const z = i32x4.splat(0);
  const lo = v128.shuffle<u16>(z, w, 0, 8, 1, 9, 2, 10, 3, 11);
  const hi = v128.shuffle<u16>(z, w, 4, 12, 5, 13, 6, 14, 7, 15);
  return madd(vh, hi, madd(v, lo, acc));
}

@inline function loadW1<W>(p: usize): f32 {
  if (sizeof<W>() == 2) return reinterpret<f32>(<u32>load<u16>(p) << 16);
  return load<f32>(p);
}

@inline function biasAt(bias: usize, n: i32): f32 {
  return bias ? load<f32>(bias + (<usize>n << 2)) : 0;
}

// ---- micro-kernels: out rows m.., w rows n.., over k in [0, kVec) ----------

/**
 * 4 rows of x × 2 rows of w: 8 accumulators + 2 weight + 1 x registers fit the
 * 16 xmm registers V8 allocates; 6 loads (2 of them widened for bf16) per 16 flops.
 */
@inline function block4x2<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const xs = <usize>K << 2;
  const ws = <usize>K * sizeof<W>();
  const x0 = x + <usize>m * xs, x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  const w0 = w + <usize>n * ws, w1 = w0 + ws;
  let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  for (let k = 0; k < kVec; k += 4) {
    const xo = <usize>k << 2, wo = <usize>k * sizeof<W>();
    const u0 = loadW4<W>(w0 + wo), u1 = loadW4<W>(w1 + wo);
    let v = v128.load(x0 + xo);
    a00 = madd(v, u0, a00); a01 = madd(v, u1, a01);
    v = v128.load(x1 + xo);
    a10 = madd(v, u0, a10); a11 = madd(v, u1, a11);
    v = v128.load(x2 + xo);
    a20 = madd(v, u0, a20); a21 = madd(v, u1, a21);
    v = v128.load(x3 + xo);
    a30 = madd(v, u0, a30); a31 = madd(v, u1, a31);
  }
  // Two outputs per row: [hsum(a_r0), hsum(a_r1)] for rows r = 0..3, two rows per hsum4.
  const b0 = biasAt(bias, n), b1 = biasAt(bias, n + 1);
  const b = f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(b0), 1, b1), 3, b1);
  const s01 = f32x4.add(hsum4(a00, a01, a10, a11), b), s23 = f32x4.add(hsum4(a20, a21, a30, a31), b);
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  v128.store64_lane(o, s01, 0);
  v128.store64_lane(o + os, s01, 1);
  v128.store64_lane(o + 2 * os, s23, 0);
  v128.store64_lane(o + 3 * os, s23, 1);
}

/** 1 row of x × 4 rows of w (decode, and M tails): bound by reading w. */
@inline function block1x4<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const ws = <usize>K * sizeof<W>();
  const x0 = x + ((<usize>m * K) << 2);
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  if (sizeof<W>() == 2) {
    for (let k = 0; k < kVec; k += 8) {
      const xp = x0 + (<usize>k << 2), wo = <usize>k << 1;
      const v = v128.load(xp), vh = v128.load(xp, 16);
      a0 = maddBf16x8(v, vh, v128.load(w0 + wo), a0);
      a1 = maddBf16x8(v, vh, v128.load(w1 + wo), a1);
      a2 = maddBf16x8(v, vh, v128.load(w2 + wo), a2);
      a3 = maddBf16x8(v, vh, v128.load(w3 + wo), a3);
    }
  } else for (let k = 0; k < kVec; k += 4) {
    const v = v128.load(x0 + (<usize>k << 2)), wo = <usize>k * sizeof<W>();
    a0 = madd(v, loadW4<W>(w0 + wo), a0);
    a1 = madd(v, loadW4<W>(w1 + wo), a1);
    a2 = madd(v, loadW4<W>(w2 + wo), a2);
    a3 = madd(v, loadW4<W>(w3 + wo), a3);
  }
  const b = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
  v128.store(out + ((<usize>m * N + n) << 2), f32x4.add(hsum4(a0, a1, a2, a3), b));
}

/** 1 × 1 (N tails). */
@inline function block1x1<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const x0 = x + ((<usize>m * K) << 2);
  const w0 = w + <usize>n * K * sizeof<W>();
  let a = f32x4.splat(0);
  for (let k = 0; k < kVec; k += 4) {
    a = madd(v128.load(x0 + (<usize>k << 2)), loadW4<W>(w0 + <usize>k * sizeof<W>()), a);
  }
  store<f32>(out + ((<usize>m * N + n) << 2), hsum(a) + biasAt(bias, n));
}

/** out[m, n] += sum over k in [kVec, K) of x[m, k] w[n, k], for the given block. */
function addKTail<W>(out: usize, x: usize, w: usize, N: i32, K: i32, kVec: i32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  for (let m = m0; m < m1; m++) {
    const xr = x + ((<usize>m * K) << 2);
    for (let n = n0; n < n1; n++) {
      const wr = w + <usize>n * K * sizeof<W>();
      let acc: f32 = 0;
      for (let k = kVec; k < K; k++) acc += load<f32>(xr + (<usize>k << 2)) * loadW1<W>(wr + <usize>k * sizeof<W>());
      const o = out + ((<usize>m * N + n) << 2);
      store<f32>(o, load<f32>(o) + acc);
    }
  }
}

// ---- driver ------------------------------------------------------------------

/** Computes the block out[m0..m1, n0..n1] of the product (one thread's share). */
export function matmulRange<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  const kVec = sizeof<W>() == 2 ? K & ~7 : K & ~3;
  const n2 = n0 + ((n1 - n0) & ~1), n4 = n0 + ((n1 - n0) & ~3);
  for (let mc = m0; mc < m1; mc += MC) {
    const mcEnd = min(mc + MC, m1);
    const m4 = mc + ((mcEnd - mc) & ~3);
    for (let n = n0; n < n2; n += 2) {
      for (let m = mc; m < m4; m += 4) block4x2<W>(out, x, w, bias, N, K, kVec, m, n);
    }
    for (let n = n2; n < n1; n++) {
      for (let m = mc; m < m4; m++) block1x1<W>(out, x, w, bias, N, K, kVec, m, n);
    }
    // Rows left over (all of them when M < 4, as in decode).
    for (let m = m4; m < mcEnd; m++) {
      for (let n = n0; n < n4; n += 4) block1x4<W>(out, x, w, bias, N, K, kVec, m, n);
      for (let n = n4; n < n1; n++) block1x1<W>(out, x, w, bias, N, K, kVec, m, n);
    }
  }
  if (kVec < K) addKTail<W>(out, x, w, N, K, kVec, m0, m1, n0, n1);
}

export function matmulF32(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  matmulRange<f32>(out, x, w, bias, N, K, m0, m1, n0, n1);
}

export function matmulBf16(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  matmulRange<u16>(out, x, w, bias, N, K, m0, m1, n0, n1);
}
