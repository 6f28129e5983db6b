// Writes K or V rows of a chunk into their page slots, rounding f32 to the
// page type (f16, bf16: round to nearest even, as util/halfFloat.ts).
//   src: f32 [T, H, d]; slots: i32 [H, T] (-1: not written); pages: [numSlots, d] of the page type.
// An infinity or NaN written (any page type) sets the i32 at `specials` to 1
// (never cleared): while it is 0 paged attention widens f16 pages without
// those cases and accumulates without guarding against them.
import { KV_BF16, KV_F32 } from "./pagedBlock";

// f32 -> f16 on integer lanes. Normal halves rebias the exponent and round
// the 13 dropped bits to nearest even (a carry into the exponent is still
// right, up to infinity); below 2^-14 adding 0.5 makes the float unit round
// to a multiple of 2^-24, the half subnormal step, and leaves it in the low bits.
const F16_OVERFLOW: i32 = (127 + 16) << 23; // 2^16: from here on infinity (or NaN)
const F16_MIN_NORMAL: i32 = 113 << 23; //     2^-14
const REBIAS: i32 = (15 - 127) << 23;
const HALF_F32: i32 = 126 << 23; //           0.5

@inline function f32x4ToF16(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(0x80000000));
  const f = v128.xor(x, sign);
  const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(f, i32x4.splat(REBIAS + 0xfff)), odd), 13);
  const subnormal = i32x4.sub(f32x4.add(f, i32x4.splat(HALF_F32)), i32x4.splat(HALF_F32));
  let h = v128.bitselect(subnormal, normal, i32x4.lt_s(f, i32x4.splat(F16_MIN_NORMAL)));
  const special = v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), i32x4.gt_s(f, i32x4.splat(0x7f800000)));
  h = v128.bitselect(special, h, i32x4.ge_s(f, i32x4.splat(F16_OVERFLOW)));
  return v128.or(h, i32x4.shr_u(sign, 16));
}

@inline function f32x4ToBf16(x: v128): v128 {
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), v128.and(i32x4.shr_u(x, 16), i32x4.splat(1))), 16);
  const quietNaN = v128.or(i32x4.shr_u(x, 16), i32x4.splat(0x40));
  return v128.bitselect(quietNaN, rounded, i32x4.gt_u(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000)));
}

@inline function f32ToHalf(x: f32, dtype: i32): u16 {
  const v = f32x4.splat(x);
  return <u16>i32x4.extract_lane(dtype == KV_BF16 ? f32x4ToBf16(v) : f32x4ToF16(v), 0);
}

/** Lanes whose f16 bits have the all-ones exponent (infinity or NaN). */
@inline function f16Specials(h: v128): v128 {
  return i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
}

/** Lanes whose bf16 bits have the all-ones exponent (infinity or NaN). */
@inline function bf16Specials(h: v128): v128 {
  return i32x4.eq(v128.and(h, i32x4.splat(0x7f80)), i32x4.splat(0x7f80));
}

/** Lanes of f32 infinity or NaN. */
@inline function f32Specials(x: v128): v128 {
  return i32x4.eq(v128.and(x, i32x4.splat(0x7f800000)), i32x4.splat(0x7f800000));
}

/** One row of d floats to 16-bit values at dst; returns whether it wrote an infinity or NaN. */
function encodeRow(dst: usize, src: usize, d: i32, dtype: i32): bool {
  let special = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= d; i += 8) {
    const a = v128.load(src + (<usize>i << 2)), b = v128.load(src + (<usize>i << 2), 16);
    const ha = dtype == KV_BF16 ? f32x4ToBf16(a) : f32x4ToF16(a);
    const hb = dtype == KV_BF16 ? f32x4ToBf16(b) : f32x4ToF16(b);
    special = v128.or(special, dtype == KV_BF16 ? v128.or(bf16Specials(ha), bf16Specials(hb)) : v128.or(f16Specials(ha), f16Specials(hb)));
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(ha, hb));
  }
  for (; i < d; i++) {
    const h = f32ToHalf(load<f32>(src + (<usize>i << 2)), dtype);
    special = v128.or(special, dtype == KV_BF16 ? bf16Specials(i32x4.splat(<i32>h)) : f16Specials(i32x4.splat(<i32>h)));
    store<u16>(dst + (<usize>i << 1), h);
  }
  return v128.any_true(special);
}

/** One f32 row copied; returns whether it holds an infinity or NaN. */
function copyRow(dst: usize, src: usize, d: i32): bool {
  let special = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= d; i += 4) {
    const x = v128.load(src + (<usize>i << 2));
    special = v128.or(special, f32Specials(x));
    v128.store(dst + (<usize>i << 2), x);
  }
  for (; i < d; i++) {
    const x = load<f32>(src + (<usize>i << 2));
    special = v128.or(special, f32Specials(f32x4.splat(x)));
    store<f32>(dst + (<usize>i << 2), x);
  }
  return v128.any_true(special);
}

/** The rows of KV heads [h0, h1). */
export function writeSlots(pages: usize, src: usize, slots: usize, T: i32, H: i32, d: i32, dtype: i32, specials: usize, h0: i32, h1: i32): void {
  const rowBytes = <usize>d << 2, pageRowBytes = <usize>d * (dtype == KV_F32 ? 4 : 2);
  for (let h = h0; h < h1; h++) {
    for (let t = 0; t < T; t++) {
      const slot = load<i32>(slots + (<usize>(h * T + t) << 2));
      if (slot < 0) continue;
      const from = src + <usize>(t * H + h) * rowBytes, to = pages + <usize>slot * pageRowBytes;
      if (dtype == KV_F32 ? copyRow(to, from, d) : encodeRow(to, from, d, dtype)) store<i32>(specials, 1);
    }
  }
}
