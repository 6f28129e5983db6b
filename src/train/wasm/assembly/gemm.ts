// Matrix products in the two layouts attention's passes need, with leading
// dimensions (row strides, in floats) so a block can read a prefix of a
// longer matrix, and out = beta * out + alpha * product (beta 0 or 1):
//
//   gemmNN: out[M, N] (+)= alpha * x[M, K] · w[K, N]
//   gemmTN: out[M, N] (+)= alpha * x[K, M]^T · w[K, N]
//
// Both vectorize along N (four outputs per f32x4, no horizontal sums) with
// a micro-tile of 4 rows x 8 columns: 8 accumulators, 2 vector loads and 4
// broadcasts per 8 multiply-adds. Columns are taken NB at a time so w's
// block stays in L1 while the rows of x stream past.
import { madd } from "../../../backends/cpu/wasm/assembly/simdMath";

const NB: i32 = 64;
/** Rows of w per pass: a K x NB block of w (128 KiB) stays in L2 while every row of x passes it. */
const KB: i32 = 512;

@inline function finish(o: usize, acc: v128, alpha: v128, beta: bool): void {
  const v = f32x4.mul(acc, alpha);
  v128.store(o, beta ? f32x4.add(v128.load(o), v) : v);
}

@inline function finish1(o: usize, acc: f32, alpha: f32, beta: bool): void {
  store<f32>(o, beta ? load<f32>(o) + alpha * acc : alpha * acc);
}

/**
 * Rows [m, m+mr) (mr <= 4) x columns [n, n+8) over k: x element (r, k) at
 * x + (r * xr + k * xk) floats. gemmNN reads x row-major (xr = ldx, xk = 1),
 * gemmTN transposed (xr = 1, xk = ldx).
 */
@inline function tile4x8(out: usize, ldo: i32, x: usize, xr: i32, xk: i32, w: usize, ldw: i32, K: i32, m: i32, n: i32, alpha: v128, beta: bool): void {
  let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  const x0 = x + ((<usize>m * xr) << 2), xs = <usize>xr << 2, ks = <usize>xk << 2;
  let wp = w + (<usize>n << 2);
  const ws = <usize>ldw << 2;
  let xp = x0;
  for (let k = 0; k < K; k++) {
    const w0 = v128.load(wp), w1 = v128.load(wp, 16);
    let v = v128.load32_splat(xp);
    a00 = madd(v, w0, a00); a01 = madd(v, w1, a01);
    v = v128.load32_splat(xp + xs);
    a10 = madd(v, w0, a10); a11 = madd(v, w1, a11);
    v = v128.load32_splat(xp + 2 * xs);
    a20 = madd(v, w0, a20); a21 = madd(v, w1, a21);
    v = v128.load32_splat(xp + 3 * xs);
    a30 = madd(v, w0, a30); a31 = madd(v, w1, a31);
    wp += ws;
    xp += ks;
  }
  const o = out + ((<usize>m * ldo + n) << 2), os = <usize>ldo << 2;
  finish(o, a00, alpha, beta); finish(o + 16, a01, alpha, beta);
  finish(o + os, a10, alpha, beta); finish(o + os + 16, a11, alpha, beta);
  finish(o + 2 * os, a20, alpha, beta); finish(o + 2 * os + 16, a21, alpha, beta);
  finish(o + 3 * os, a30, alpha, beta); finish(o + 3 * os + 16, a31, alpha, beta);
}

/** One row x 4 columns (row and column tails of 4). */
@inline function tile1x4(out: usize, ldo: i32, x: usize, xr: i32, xk: i32, w: usize, ldw: i32, K: i32, m: i32, n: i32, alpha: v128, beta: bool): void {
  let acc = f32x4.splat(0);
  let xp = x + ((<usize>m * xr) << 2), wp = w + (<usize>n << 2);
  const ks = <usize>xk << 2, ws = <usize>ldw << 2;
  for (let k = 0; k < K; k++) {
    acc = madd(v128.load32_splat(xp), v128.load(wp), acc);
    wp += ws;
    xp += ks;
  }
  finish(out + ((<usize>m * ldo + n) << 2), acc, alpha, beta);
}

@inline function tile1x1(out: usize, ldo: i32, x: usize, xr: i32, xk: i32, w: usize, ldw: i32, K: i32, m: i32, n: i32, alpha: f32, beta: bool): void {
  let acc: f32 = 0;
  let xp = x + ((<usize>m * xr) << 2), wp = w + (<usize>n << 2);
  const ks = <usize>xk << 2, ws = <usize>ldw << 2;
  for (let k = 0; k < K; k++) {
    acc += load<f32>(xp) * load<f32>(wp);
    wp += ws;
    xp += ks;
  }
  finish1(out + ((<usize>m * ldo + n) << 2), acc, alpha, beta);
}

function gemm(out: usize, ldo: i32, x: usize, xr: i32, xk: i32, w: usize, ldw: i32, M: i32, N: i32, K: i32, alpha: f32, beta: bool): void {
  // NOTE: K in passes of KB rows of w, the first overwriting out (unless beta), the rest adding to it
  for (let k0 = 0; k0 < K; k0 += KB) {
    const kn = min(KB, K - k0);
    gemmPass(out, ldo, x + ((<usize>k0 * xk) << 2), xr, xk, w + ((<usize>k0 * ldw) << 2), ldw, M, N, kn, alpha, beta || k0 > 0);
  }
  if (K == 0) gemmPass(out, ldo, x, xr, xk, w, ldw, M, N, 0, alpha, beta);
}

function gemmPass(out: usize, ldo: i32, x: usize, xr: i32, xk: i32, w: usize, ldw: i32, M: i32, N: i32, K: i32, alpha: f32, beta: bool): void {
  const av = f32x4.splat(alpha);
  const m4 = M & ~3, n8 = N & ~7, n4 = N & ~3;
  for (let n0 = 0; n0 < n8; n0 += NB) {
    const n1 = min(n8, n0 + NB);
    for (let m = 0; m < m4; m += 4) {
      for (let n = n0; n < n1; n += 8) tile4x8(out, ldo, x, xr, xk, w, ldw, K, m, n, av, beta);
    }
  }
  // column tail: 4 then 1 at a time, every row; row tail: the 8-column part, one row at a time
  for (let m = 0; m < M; m++) {
    for (let n = n8; n < n4; n += 4) tile1x4(out, ldo, x, xr, xk, w, ldw, K, m, n, av, beta);
    for (let n = n4; n < N; n++) tile1x1(out, ldo, x, xr, xk, w, ldw, K, m, n, alpha, beta);
  }
  for (let m = m4; m < M; m++) {
    for (let n = 0; n < n8; n += 4) tile1x4(out, ldo, x, xr, xk, w, ldw, K, m, n, av, beta);
  }
}

/** out[M, N] = (accumulate ? out : 0) + alpha * x[M, K] · w[K, N]; leading dimensions ldo, ldx, ldw. */
export function gemmNN(out: usize, ldo: i32, x: usize, ldx: i32, w: usize, ldw: i32, M: i32, N: i32, K: i32, alpha: f32, accumulate: bool): void {
  gemm(out, ldo, x, ldx, 1, w, ldw, M, N, K, alpha, accumulate);
}

/** out[M, N] = (accumulate ? out : 0) + alpha * x[K, M]^T · w[K, N]; leading dimensions ldo, ldx, ldw. */
export function gemmTN(out: usize, ldo: i32, x: usize, ldx: i32, w: usize, ldw: i32, M: i32, N: i32, K: i32, alpha: f32, accumulate: bool): void {
  gemm(out, ldo, x, 1, ldx, w, ldw, M, N, K, alpha, accumulate);
}
