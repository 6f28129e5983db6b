// Backward passes of the light per-token ops, and the gate's GELU, for the
// gate trainer (src/train/). Each kernel does a whole call on one thread: the
// trainer runs samples in parallel instead (src/platform/node/trainWorkers.ts).
import { expF32x4, geluErfF32x4, hsum } from "../../../backends/cpu/wasm/assembly/simdMath";

/**
 * RMSNorm's backward over rows [r0, r1): y = w * x * rstd, rstd = 1/sqrt(mean(x^2) + eps).
 * dx (+)= rstd * (w dy) - x * rstd^3 / dim * sum(w dy x); dWeight (if not 0) += dy * x * rstd.
 */
export function rmsNormBackwardRows(dx: usize, dy: usize, x: usize, weight: usize, dWeight: usize, dim: i32, eps: f32, accumulate: bool, r0: i32, r1: i32): void {
  const rowBytes = <usize>dim << 2;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * rowBytes, dyr = dy + <usize>r * rowBytes, dxr = dx + <usize>r * rowBytes;
    let ss = f32x4.splat(0), dot = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      const o = <usize>i << 2;
      const xv = v128.load(xr + o);
      ss = f32x4.add(ss, f32x4.mul(xv, xv));
      dot = f32x4.add(dot, f32x4.mul(f32x4.mul(v128.load(weight + o), v128.load(dyr + o)), xv));
    }
    let sumSq = hsum(ss), sumDot = hsum(dot);
    for (; i < dim; i++) {
      const o = <usize>i << 2;
      const xv = load<f32>(xr + o);
      sumSq += xv * xv;
      sumDot += load<f32>(weight + o) * load<f32>(dyr + o) * xv;
    }
    const rstd: f32 = 1 / Mathf.sqrt(sumSq / <f32>dim + eps);
    const c: f32 = (sumDot * rstd * rstd * rstd) / <f32>dim;
    for (i = 0; i < dim; i++) {
      const o = <usize>i << 2;
      const xv = load<f32>(xr + o), g = load<f32>(dyr + o);
      const v = rstd * load<f32>(weight + o) * g - xv * c;
      store<f32>(dxr + o, accumulate ? load<f32>(dxr + o) + v : v);
      if (dWeight) store<f32>(dWeight + o, load<f32>(dWeight + o) + g * xv * rstd);
    }
  }
}

/** y = silu(gate) * up: dGate = dy * up * s (1 + gate (1 - s)), dUp = dy * gate * s, s = sigmoid(gate), over [i0, i1). */
export function siluMulBackwardRange(dGate: usize, dUp: usize, dy: usize, gate: usize, up: usize, i0: i32, i1: i32): void {
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o), d = v128.load(dy + o);
    const s = f32x4.div(one, f32x4.add(one, expF32x4(f32x4.neg(g))));
    const u = v128.load(up + o);
    v128.store(dUp + o, f32x4.mul(d, f32x4.mul(g, s)));
    v128.store(dGate + o, f32x4.mul(f32x4.mul(d, u), f32x4.mul(s, f32x4.add(one, f32x4.mul(g, f32x4.sub(one, s))))));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o), d = load<f32>(dy + o), u = load<f32>(up + o);
    const s: f32 = 1 / (1 + f32x4.extract_lane(expF32x4(f32x4.splat(-g)), 0));
    store<f32>(dUp + o, d * g * s);
    store<f32>(dGate + o, d * u * s * (1 + g * (1 - s)));
  }
}

/** out = GELU(a) (exact erf) over [i0, i1); out may be a. */
export function geluRange(out: usize, a: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), geluErfF32x4(v128.load(a + (<usize>i << 2))));
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), f32x4.extract_lane(geluErfF32x4(f32x4.splat(load<f32>(a + (<usize>i << 2)))), 0));
}

const INV_SQRT_2PI: f32 = 0.3989422804014327;

/**
 * da = du * GELU'(a), GELU'(a) = Phi(a) + a phi(a), over [i0, i1); da may be du.
 * Phi(a) = GELU(a) / a is taken from the same erf approximation as the forward
 * (and 1/2 at a = 0), so forward and backward stay consistent.
 */
export function geluBackwardRange(da: usize, du: usize, a: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(da + o, f32x4.mul(v128.load(du + o), geluGrad4(v128.load(a + o))));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(da + o, load<f32>(du + o) * f32x4.extract_lane(geluGrad4(f32x4.splat(load<f32>(a + o))), 0));
  }
}

@inline function geluGrad4(x: v128): v128 {
  const cdf = v128.bitselect(f32x4.splat(0.5), f32x4.div(geluErfF32x4(x), x), f32x4.eq(x, f32x4.splat(0)));
  const pdf = f32x4.mul(f32x4.splat(INV_SQRT_2PI), expF32x4(f32x4.mul(f32x4.splat(-0.5), f32x4.mul(x, x))));
  return f32x4.add(cdf, f32x4.mul(x, pdf));
}

/** y[i] += alpha * x[i] over [i0, i1). */
export function axpyRange(y: usize, x: usize, alpha: f32, i0: i32, i1: i32): void {
  const av = f32x4.splat(alpha);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, v128.load(x + o))));
  }
  for (; i < i1; i++) store<f32>(y + (<usize>i << 2), load<f32>(y + (<usize>i << 2)) + alpha * load<f32>(x + (<usize>i << 2)));
}
