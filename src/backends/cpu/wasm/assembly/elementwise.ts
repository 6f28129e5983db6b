// The light per-token ops of a transformer layer, each over one thread's
// share of rows or elements (the host splits a call; see
// src/backends/cpu/wasm/chunks.ts). They follow transformers' f32 order of
// operations, so they agree with the reference kernels to a few ulps.
import { expF32x4, hsum } from "./simdMath";

/** One row: dst[0..dim) = weight * (src * 1/sqrt(mean(src^2) + eps)); dst may be src. */
@inline export function rmsNormRow(dst: usize, src: usize, weight: usize, dim: i32, eps: f32): void {
  const dim4 = dim & ~3;
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i < dim4; i += 4) {
    const v = v128.load(src + (<usize>i << 2));
    acc = f32x4.add(acc, f32x4.mul(v, v));
  }
  let sumSq = hsum(acc);
  for (; i < dim; i++) sumSq += load<f32>(src + (<usize>i << 2)) * load<f32>(src + (<usize>i << 2));
  const inv: f32 = 1 / Mathf.sqrt(sumSq / <f32>dim + eps);
  const iv = f32x4.splat(inv);
  for (i = 0; i < dim4; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.mul(v128.load(weight + o), f32x4.mul(v128.load(src + o), iv)));
  }
  for (; i < dim; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(weight + o) * (load<f32>(src + o) * inv));
  }
}

/** RMSNorm of rows [r0, r1): x, out f32 [rows, dim] (out may be x); weight f32 [dim]. */
export function rmsNormRows(out: usize, x: usize, weight: usize, dim: i32, eps: f32, r0: i32, r1: i32): void {
  const rowBytes = <usize>dim << 2;
  for (let r = r0; r < r1; r++) rmsNormRow(out + <usize>r * rowBytes, x + <usize>r * rowBytes, weight, dim, eps);
}

/** out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i] for i in [i0, i1); out may be gate. */
export function siluMulRange(out: usize, gate: usize, up: usize, i0: i32, i1: i32): void {
  let i = i0;
  const one = f32x4.splat(1);
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2, g = v128.load(gate + o);
    v128.store(out + o, f32x4.mul(f32x4.div(g, f32x4.add(one, expF32x4(f32x4.neg(g)))), v128.load(up + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2, g = load<f32>(gate + o);
    store<f32>(out + o, g / (1 + f32x4.extract_lane(expF32x4(f32x4.splat(-g)), 0)) * load<f32>(up + o));
  }
}

/** x[i] += y[i] for i in [i0, i1). */
export function addRange(x: usize, y: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.add(v128.load(x + o), v128.load(y + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) + load<f32>(y + o));
  }
}

/**
 * RoPE of tokens [t0, t1), in place: x f32 [T, numHeads, 2 * half]; cosSin
 * f32 [T, 2, half] holds token t's cos then sin per frequency. Each head's
 * halves (a, b) become (a cos - b sin, b cos + a sin), as transformers'
 * x * cos + rotate_half(x) * sin.
 */
export function ropeRows(x: usize, cosSin: usize, numHeads: i32, half: i32, t0: i32, t1: i32): void {
  const halfBytes = <usize>half << 2, half4 = half & ~3;
  for (let t = t0; t < t1; t++) {
    const cos = cosSin + <usize>t * 2 * halfBytes, sin = cos + halfBytes;
    for (let h = 0; h < numHeads; h++) {
      const a = x + <usize>(t * numHeads + h) * 2 * halfBytes, b = a + halfBytes;
      let i = 0;
      for (; i < half4; i += 4) {
        const o = <usize>i << 2;
        const av = v128.load(a + o), bv = v128.load(b + o), c = v128.load(cos + o), s = v128.load(sin + o);
        v128.store(a + o, f32x4.sub(f32x4.mul(av, c), f32x4.mul(bv, s)));
        v128.store(b + o, f32x4.add(f32x4.mul(bv, c), f32x4.mul(av, s)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 2;
        const av = load<f32>(a + o), bv = load<f32>(b + o), c = load<f32>(cos + o), s = load<f32>(sin + o);
        store<f32>(a + o, av * c - bv * s);
        store<f32>(b + o, bv * c + av * s);
      }
    }
  }
}
