// out[M, N] = x[M, K] · w[N, K]^T (+ bias[N]), w in f32 or bf16.
//
// Both operands are K-contiguous, so every output is a dot product along K:
// SIMD runs over K (4 lanes) and each micro-kernel keeps a block of outputs in
// registers, reducing lanes only once at the end. A micro-kernel covers the
// first kVec = K & ~3 columns; the K tail (< 4 columns) is added afterwards by
// addKTail so the hot loops carry no masking.
//
// The weight type W is u16 (bf16 bit patterns) or f32, resolved at compile
// time: each kernel is instantiated once per dtype.
import { hsum, hsum4 } from "./simdMath";

/** Rows of x per cache tile: MC rows × K of x stay in L2 while w streams past. */
const MC: i32 = 64;

/** Four consecutive weights widened to f32x4. bf16 is the top half of an f32. */
@inline function loadW4<W>(p: usize): v128 {
  if (sizeof<W>() == 2) return i32x4.shl(v128.load16x4_u(p), 16);
  return v128.load(p);
}

@inline function loadW1<W>(p: usize): f32 {
  if (sizeof<W>() == 2) return reinterpret<f32>(<u32>load<u16>(p) << 16);
  return load<f32>(p);
}

@inline function biasAt(bias: usize, n: i32): f32 {
  return bias ? load<f32>(bias + (<usize>n << 2)) : 0;
}

// ---- micro-kernels: out rows m.., w rows n.., over k in [0, kVec) ----------

/** 4 rows of x × 4 rows of w: 16 accumulators, 8 loads per 32 flops. */
@inline function block4x4<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const xs = <usize>K << 2;
  const ws = <usize>K * sizeof<W>();
  const x0 = x + <usize>m * xs, x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws;
  let a00 = f32x4.splat(0), a01 = a00, a02 = a00, a03 = a00;
  let a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  let a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  let a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  for (let k = 0; k < kVec; k += 4) {
    const xo = <usize>k << 2, wo = <usize>k * sizeof<W>();
    const v0 = v128.load(x0 + xo), v1 = v128.load(x1 + xo), v2 = v128.load(x2 + xo), v3 = v128.load(x3 + xo);
    let u = loadW4<W>(w0 + wo);
    a00 = f32x4.add(a00, f32x4.mul(v0, u)); a10 = f32x4.add(a10, f32x4.mul(v1, u));
    a20 = f32x4.add(a20, f32x4.mul(v2, u)); a30 = f32x4.add(a30, f32x4.mul(v3, u));
    u = loadW4<W>(w1 + wo);
    a01 = f32x4.add(a01, f32x4.mul(v0, u)); a11 = f32x4.add(a11, f32x4.mul(v1, u));
    a21 = f32x4.add(a21, f32x4.mul(v2, u)); a31 = f32x4.add(a31, f32x4.mul(v3, u));
    u = loadW4<W>(w2 + wo);
    a02 = f32x4.add(a02, f32x4.mul(v0, u)); a12 = f32x4.add(a12, f32x4.mul(v1, u));
    a22 = f32x4.add(a22, f32x4.mul(v2, u)); a32 = f32x4.add(a32, f32x4.mul(v3, u));
    u = loadW4<W>(w3 + wo);
    a03 = f32x4.add(a03, f32x4.mul(v0, u)); a13 = f32x4.add(a13, f32x4.mul(v1, u));
    a23 = f32x4.add(a23, f32x4.mul(v2, u)); a33 = f32x4.add(a33, f32x4.mul(v3, u));
  }
  const b = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  v128.store(o, f32x4.add(hsum4(a00, a01, a02, a03), b));
  v128.store(o + os, f32x4.add(hsum4(a10, a11, a12, a13), b));
  v128.store(o + 2 * os, f32x4.add(hsum4(a20, a21, a22, a23), b));
  v128.store(o + 3 * os, f32x4.add(hsum4(a30, a31, a32, a33), b));
}

/** 1 row of x × 4 rows of w (decode, and M tails): bound by reading w. */
@inline function block1x4<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const ws = <usize>K * sizeof<W>();
  const x0 = x + ((<usize>m * K) << 2);
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let k = 0; k < kVec; k += 4) {
    const v = v128.load(x0 + (<usize>k << 2)), wo = <usize>k * sizeof<W>();
    a0 = f32x4.add(a0, f32x4.mul(v, loadW4<W>(w0 + wo)));
    a1 = f32x4.add(a1, f32x4.mul(v, loadW4<W>(w1 + wo)));
    a2 = f32x4.add(a2, f32x4.mul(v, loadW4<W>(w2 + wo)));
    a3 = f32x4.add(a3, f32x4.mul(v, loadW4<W>(w3 + wo)));
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
    a = f32x4.add(a, f32x4.mul(v128.load(x0 + (<usize>k << 2)), loadW4<W>(w0 + <usize>k * sizeof<W>())));
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

/** EXPERIMENT: 2 rows of x × 4 rows of w. */
@inline function block2x4<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const xs = <usize>K << 2;
  const ws = <usize>K * sizeof<W>();
  const x0 = x + <usize>m * xs, x1 = x0 + xs;
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws;
  let a00 = f32x4.splat(0), a01 = a00, a02 = a00, a03 = a00;
  let a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  for (let k = 0; k < kVec; k += 4) {
    const xo = <usize>k << 2, wo = <usize>k * sizeof<W>();
    const v0 = v128.load(x0 + xo), v1 = v128.load(x1 + xo);
    let u = loadW4<W>(w0 + wo);
    a00 = f32x4.add(a00, f32x4.mul(v0, u)); a10 = f32x4.add(a10, f32x4.mul(v1, u));
    u = loadW4<W>(w1 + wo);
    a01 = f32x4.add(a01, f32x4.mul(v0, u)); a11 = f32x4.add(a11, f32x4.mul(v1, u));
    u = loadW4<W>(w2 + wo);
    a02 = f32x4.add(a02, f32x4.mul(v0, u)); a12 = f32x4.add(a12, f32x4.mul(v1, u));
    u = loadW4<W>(w3 + wo);
    a03 = f32x4.add(a03, f32x4.mul(v0, u)); a13 = f32x4.add(a13, f32x4.mul(v1, u));
  }
  const b = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  v128.store(o, f32x4.add(hsum4(a00, a01, a02, a03), b));
  v128.store(o + os, f32x4.add(hsum4(a10, a11, a12, a13), b));
}

/** EXPERIMENT: 3 rows of x × 4 rows of w. */
@inline function block3x4<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const xs = <usize>K << 2;
  const ws = <usize>K * sizeof<W>();
  const x0 = x + <usize>m * xs, x1 = x0 + xs, x2 = x1 + xs;
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws;
  let a00 = f32x4.splat(0), a01 = a00, a02 = a00, a03 = a00;
  let a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  let a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  for (let k = 0; k < kVec; k += 4) {
    const xo = <usize>k << 2, wo = <usize>k * sizeof<W>();
    const v0 = v128.load(x0 + xo), v1 = v128.load(x1 + xo), v2 = v128.load(x2 + xo);
    let u = loadW4<W>(w0 + wo);
    a00 = f32x4.add(a00, f32x4.mul(v0, u)); a10 = f32x4.add(a10, f32x4.mul(v1, u)); a20 = f32x4.add(a20, f32x4.mul(v2, u));
    u = loadW4<W>(w1 + wo);
    a01 = f32x4.add(a01, f32x4.mul(v0, u)); a11 = f32x4.add(a11, f32x4.mul(v1, u)); a21 = f32x4.add(a21, f32x4.mul(v2, u));
    u = loadW4<W>(w2 + wo);
    a02 = f32x4.add(a02, f32x4.mul(v0, u)); a12 = f32x4.add(a12, f32x4.mul(v1, u)); a22 = f32x4.add(a22, f32x4.mul(v2, u));
    u = loadW4<W>(w3 + wo);
    a03 = f32x4.add(a03, f32x4.mul(v0, u)); a13 = f32x4.add(a13, f32x4.mul(v1, u)); a23 = f32x4.add(a23, f32x4.mul(v2, u));
  }
  const b = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  v128.store(o, f32x4.add(hsum4(a00, a01, a02, a03), b));
  v128.store(o + os, f32x4.add(hsum4(a10, a11, a12, a13), b));
  v128.store(o + 2 * os, f32x4.add(hsum4(a20, a21, a22, a23), b));
}

/** EXPERIMENT: 4 rows of x × 2 rows of w. */
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
    a00 = f32x4.add(a00, f32x4.mul(v, u0)); a01 = f32x4.add(a01, f32x4.mul(v, u1));
    v = v128.load(x1 + xo);
    a10 = f32x4.add(a10, f32x4.mul(v, u0)); a11 = f32x4.add(a11, f32x4.mul(v, u1));
    v = v128.load(x2 + xo);
    a20 = f32x4.add(a20, f32x4.mul(v, u0)); a21 = f32x4.add(a21, f32x4.mul(v, u1));
    v = v128.load(x3 + xo);
    a30 = f32x4.add(a30, f32x4.mul(v, u0)); a31 = f32x4.add(a31, f32x4.mul(v, u1));
  }
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  const b0 = biasAt(bias, n), b1 = biasAt(bias, n + 1);
  store<f32>(o, hsum(a00) + b0); store<f32>(o, hsum(a01) + b1, 4);
  store<f32>(o + os, hsum(a10) + b0); store<f32>(o + os, hsum(a11) + b1, 4);
  store<f32>(o + 2 * os, hsum(a20) + b0); store<f32>(o + 2 * os, hsum(a21) + b1, 4);
  store<f32>(o + 3 * os, hsum(a30) + b0); store<f32>(o + 3 * os, hsum(a31) + b1, 4);
}

/** EXPERIMENT: 6 rows of x × 2 rows of w. */
@inline function block6x2<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const xs = <usize>K << 2;
  const ws = <usize>K * sizeof<W>();
  const x0 = x + <usize>m * xs, x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs, x4 = x3 + xs, x5 = x4 + xs;
  const w0 = w + <usize>n * ws, w1 = w0 + ws;
  let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  for (let k = 0; k < kVec; k += 4) {
    const xo = <usize>k << 2, wo = <usize>k * sizeof<W>();
    const u0 = loadW4<W>(w0 + wo), u1 = loadW4<W>(w1 + wo);
    let v = v128.load(x0 + xo);
    a00 = f32x4.add(a00, f32x4.mul(v, u0)); a01 = f32x4.add(a01, f32x4.mul(v, u1));
    v = v128.load(x1 + xo);
    a10 = f32x4.add(a10, f32x4.mul(v, u0)); a11 = f32x4.add(a11, f32x4.mul(v, u1));
    v = v128.load(x2 + xo);
    a20 = f32x4.add(a20, f32x4.mul(v, u0)); a21 = f32x4.add(a21, f32x4.mul(v, u1));
    v = v128.load(x3 + xo);
    a30 = f32x4.add(a30, f32x4.mul(v, u0)); a31 = f32x4.add(a31, f32x4.mul(v, u1));
    v = v128.load(x4 + xo);
    a40 = f32x4.add(a40, f32x4.mul(v, u0)); a41 = f32x4.add(a41, f32x4.mul(v, u1));
    v = v128.load(x5 + xo);
    a50 = f32x4.add(a50, f32x4.mul(v, u0)); a51 = f32x4.add(a51, f32x4.mul(v, u1));
  }
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  const b0 = biasAt(bias, n), b1 = biasAt(bias, n + 1);
  store<f32>(o, hsum(a00) + b0); store<f32>(o, hsum(a01) + b1, 4);
  store<f32>(o + os, hsum(a10) + b0); store<f32>(o + os, hsum(a11) + b1, 4);
  store<f32>(o + 2 * os, hsum(a20) + b0); store<f32>(o + 2 * os, hsum(a21) + b1, 4);
  store<f32>(o + 3 * os, hsum(a30) + b0); store<f32>(o + 3 * os, hsum(a31) + b1, 4);
  store<f32>(o + 4 * os, hsum(a40) + b0); store<f32>(o + 4 * os, hsum(a41) + b1, 4);
  store<f32>(o + 5 * os, hsum(a50) + b0); store<f32>(o + 5 * os, hsum(a51) + b1, 4);
}

/** EXPERIMENT: 4 rows of x × 3 rows of w. */
@inline function block4x3<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const xs = <usize>K << 2;
  const ws = <usize>K * sizeof<W>();
  const x0 = x + <usize>m * xs, x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws;
  let a00 = f32x4.splat(0), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00, a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  for (let k = 0; k < kVec; k += 4) {
    const xo = <usize>k << 2, wo = <usize>k * sizeof<W>();
    const u0 = loadW4<W>(w0 + wo), u1 = loadW4<W>(w1 + wo), u2 = loadW4<W>(w2 + wo);
    let v = v128.load(x0 + xo);
    a00 = f32x4.add(a00, f32x4.mul(v, u0)); a01 = f32x4.add(a01, f32x4.mul(v, u1)); a02 = f32x4.add(a02, f32x4.mul(v, u2));
    v = v128.load(x1 + xo);
    a10 = f32x4.add(a10, f32x4.mul(v, u0)); a11 = f32x4.add(a11, f32x4.mul(v, u1)); a12 = f32x4.add(a12, f32x4.mul(v, u2));
    v = v128.load(x2 + xo);
    a20 = f32x4.add(a20, f32x4.mul(v, u0)); a21 = f32x4.add(a21, f32x4.mul(v, u1)); a22 = f32x4.add(a22, f32x4.mul(v, u2));
    v = v128.load(x3 + xo);
    a30 = f32x4.add(a30, f32x4.mul(v, u0)); a31 = f32x4.add(a31, f32x4.mul(v, u1)); a32 = f32x4.add(a32, f32x4.mul(v, u2));
  }
  const o = out + ((<usize>m * N + n) << 2), os = <usize>N << 2;
  const b0 = biasAt(bias, n), b1 = biasAt(bias, n + 1), b2 = biasAt(bias, n + 2);
  store<f32>(o, hsum(a00) + b0); store<f32>(o, hsum(a01) + b1, 4); store<f32>(o, hsum(a02) + b2, 8);
  store<f32>(o + os, hsum(a10) + b0); store<f32>(o + os, hsum(a11) + b1, 4); store<f32>(o + os, hsum(a12) + b2, 8);
  store<f32>(o + 2 * os, hsum(a20) + b0); store<f32>(o + 2 * os, hsum(a21) + b1, 4); store<f32>(o + 2 * os, hsum(a22) + b2, 8);
  store<f32>(o + 3 * os, hsum(a30) + b0); store<f32>(o + 3 * os, hsum(a31) + b1, 4); store<f32>(o + 3 * os, hsum(a32) + b2, 8);
}

/** EXPERIMENT: 1 row of x × 8 rows of w. */
@inline function block1x8<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  const ws = <usize>K * sizeof<W>();
  const x0 = x + ((<usize>m * K) << 2);
  const w0 = w + <usize>n * ws, w1 = w0 + ws, w2 = w1 + ws, w3 = w2 + ws, w4 = w3 + ws, w5 = w4 + ws, w6 = w5 + ws, w7 = w6 + ws;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (let k = 0; k < kVec; k += 4) {
    const v = v128.load(x0 + (<usize>k << 2)), wo = <usize>k * sizeof<W>();
    a0 = f32x4.add(a0, f32x4.mul(v, loadW4<W>(w0 + wo)));
    a1 = f32x4.add(a1, f32x4.mul(v, loadW4<W>(w1 + wo)));
    a2 = f32x4.add(a2, f32x4.mul(v, loadW4<W>(w2 + wo)));
    a3 = f32x4.add(a3, f32x4.mul(v, loadW4<W>(w3 + wo)));
    a4 = f32x4.add(a4, f32x4.mul(v, loadW4<W>(w4 + wo)));
    a5 = f32x4.add(a5, f32x4.mul(v, loadW4<W>(w5 + wo)));
    a6 = f32x4.add(a6, f32x4.mul(v, loadW4<W>(w6 + wo)));
    a7 = f32x4.add(a7, f32x4.mul(v, loadW4<W>(w7 + wo)));
  }
  const b = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
  const b2 = bias ? v128.load(bias + (<usize>n << 2), 16) : f32x4.splat(0);
  const o = out + ((<usize>m * N + n) << 2);
  v128.store(o, f32x4.add(hsum4(a0, a1, a2, a3), b));
  v128.store(o, f32x4.add(hsum4(a4, a5, a6, a7), b2), 16);
}
const DR: i32 = 8;

const MR: i32 = 4;
const NR: i32 = 2;
@inline function blockMain<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, kVec: i32, m: i32, n: i32): void {
  if (MR == 4 && NR == 4) block4x4<W>(out, x, w, bias, N, K, kVec, m, n);
  else if (MR == 2 && NR == 4) block2x4<W>(out, x, w, bias, N, K, kVec, m, n);
  else if (MR == 3 && NR == 4) block3x4<W>(out, x, w, bias, N, K, kVec, m, n);
  else if (MR == 6 && NR == 2) block6x2<W>(out, x, w, bias, N, K, kVec, m, n);
  else if (MR == 4 && NR == 3) block4x3<W>(out, x, w, bias, N, K, kVec, m, n);
  else block4x2<W>(out, x, w, bias, N, K, kVec, m, n);
}

// ---- driver ------------------------------------------------------------------

/** Computes the block out[m0..m1, n0..n1] of the product (one thread's share). */
function matmulRange<W>(out: usize, x: usize, w: usize, bias: usize, N: i32, K: i32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  const kVec = K & ~3;
  const n4 = n0 + ((n1 - n0) & ~3);
  const nR = n0 + ((n1 - n0) / NR) * NR;
  const mcRows = 64;
  for (let mc = m0; mc < m1; mc += mcRows) {
    const mcEnd = min(mc + mcRows, m1);
    const mMain = mc + ((mcEnd - mc) / MR) * MR;
    for (let n = n0; n < nR; n += NR) {
      for (let m = mc; m < mMain; m += MR) blockMain<W>(out, x, w, bias, N, K, kVec, m, n);
    }
    for (let n = nR; n < n1; n++) {
      for (let m = mc; m < mMain; m++) block1x1<W>(out, x, w, bias, N, K, kVec, m, n);
    }
    for (let m = mMain; m < mcEnd; m++) {
      let n = n0;
      if (DR == 8) for (; n + 8 <= n4; n += 8) block1x8<W>(out, x, w, bias, N, K, kVec, m, n);
      for (; n < n4; n += 4) block1x4<W>(out, x, w, bias, N, K, kVec, m, n);
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
