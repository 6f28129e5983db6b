// SIMD helpers shared by the kernels: multiply-add, horizontal sums and a vector exp.

/**
 * a * b + c lane-wise. The module is built twice (scripts/build-wasm.mjs):
 * with relaxed SIMD this is one fused multiply-add where the CPU has FMA,
 * which halves the arithmetic of every dot-product loop; without, a mul and an add.
 */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the four lanes of an f32x4. */
@inline export function hsum(v: v128): f32 {
  const pairs = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1);
}

/** [hsum(a), hsum(b), hsum(c), hsum(d)]: four horizontal sums as one vector. */
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  // ab = [a0+a2, b0+b2, a1+a3, b1+b3], cd likewise; then fold the halves.
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

// Cody–Waite split of ln 2 and a degree-6 polynomial for e^r on |r| <= ln2/2
// (the Cephes expf coefficients): about 1 ulp on the range.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
// NOTE: below ln(FLT_MIN) the result would be subnormal; clamping keeps 2^n
// constructible from exponent bits, and e^-87.3 ~ 1e-38 is zero for softmax.
const MIN_ARG: f32 = -87.33654;
const MAX_ARG: f32 = 88.0;

// NOTE: adding 1.5 * 2^23 rounds to an integer (to nearest even, as
// f32x4.nearest) and leaves it in the low mantissa bits, where 2^n can be
// built from it: cheaper on x64 than nearest + trunc_sat, and the same n.
const SHIFTER: f32 = 12582912.0;

/** e^x for each lane, for x in [-inf, 88]; -inf gives ~1e-38, not 0. */
@inline export function expF32x4(x: v128): v128 {
  // NOTE: pmin/pmax are single instructions on x64; min/max pay for NaN and ±0 rules that do not matter here.
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(MIN_ARG)), f32x4.splat(MAX_ARG));
  // NOTE: t rounds x·log2(e) to an integer either way (fused or not: the add of SHIFTER rounds).
  const t = madd(x, f32x4.splat(LOG2E), f32x4.splat(SHIFTER));
  const n = f32x4.sub(t, f32x4.splat(SHIFTER));
  let r = madd(n, f32x4.splat(-LN2_HI), x);
  r = madd(n, f32x4.splat(-LN2_LO), r);
  let p = f32x4.splat(1.9875691500e-4);
  p = madd(p, r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  p = f32x4.add(madd(f32x4.mul(p, r), r, r), f32x4.splat(1));
  // 2^n from the exponent bits: n is an integer in [-126, 127], t's low bits hold it.
  const pow2n = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return f32x4.mul(p, pow2n);
}

/** e^x for one value (same approximation as expF32x4). */
@inline export function expF32(x: f32): f32 {
  return f32x4.extract_lane(expF32x4(f32x4.splat(x)), 0);
}

// GELU with the exact erf (the write gate's activation, docs/design.md §7).
// Abramowitz & Stegun 7.1.26: for x >= 0, erfc(x) = q(t) e^(-x^2) with
// t = 1 / (1 + p x) and q a quintic, to 1.5e-7 absolute. Writing
// 1 + erf(z) as erfc(-z) for z < 0 and 2 - erfc(z) otherwise never subtracts
// nearly equal numbers, so GELU's error stays below |a| * 2e-7.
const ERF_P: f32 = 0.3275911;
const ERF_A1: f32 = 0.254829592;
const ERF_A2: f32 = -0.284496736;
const ERF_A3: f32 = 1.421413741;
const ERF_A4: f32 = -1.453152027;
const ERF_A5: f32 = 1.061405429;
const INV_SQRT2: f32 = 0.7071067811865476;

/** 0.5 a (1 + erf(a / sqrt 2)) for each lane. */
@inline export function geluErfF32x4(a: v128): v128 {
  const x = f32x4.mul(f32x4.abs(a), f32x4.splat(INV_SQRT2));
  const one = f32x4.splat(1);
  const t = f32x4.div(one, madd(x, f32x4.splat(ERF_P), one));
  let q = f32x4.splat(ERF_A5);
  q = madd(q, t, f32x4.splat(ERF_A4));
  q = madd(q, t, f32x4.splat(ERF_A3));
  q = madd(q, t, f32x4.splat(ERF_A2));
  q = madd(q, t, f32x4.splat(ERF_A1));
  const erfc = f32x4.mul(f32x4.mul(q, t), expF32x4(f32x4.neg(f32x4.mul(x, x))));
  const onePlusErf = v128.bitselect(f32x4.sub(f32x4.splat(2), erfc), erfc, f32x4.ge(a, f32x4.splat(0)));
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), a), onePlusErf);
}
