// SIMD helpers shared by the kernels: horizontal sums and a vector exp.

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
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(SHIFTER));
  const n = f32x4.sub(t, f32x4.splat(SHIFTER));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  // 2^n from the exponent bits: n is an integer in [-126, 127], t's low bits hold it.
  const pow2n = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return f32x4.mul(p, pow2n);
}

/** e^x for one value (same approximation as expF32x4). */
@inline export function expF32(x: f32): f32 {
  return f32x4.extract_lane(expF32x4(f32x4.splat(x)), 0);
}
