/**
 * @module util/floats
 *
 * Decoding and encoding of the float formats that checkpoints store
 * (f32, f16, bf16, f64) to and from Float32Array, with explicit byte order.
 * Reads go through DataView so that unaligned data (inside a zip or after a
 * safetensors header) and big-endian hosts need no special cases. The 16-bit
 * conversions themselves live in `./halfFloat.ts`.
 */
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./halfFloat.js";

/** Float storage formats a checkpoint may hold. */
export type FloatDType = "f32" | "f16" | "bf16" | "f64";

/** Bytes per element of each {@link FloatDType}. */
export const FLOAT_DTYPE_BYTES: Readonly<Record<FloatDType, number>> = { f32: 4, f16: 2, bf16: 2, f64: 8 };

/**
 * Decodes `count` elements of `dtype` starting at `byteOffset` of `bytes`.
 * The caller checks bounds; a read past the end throws a RangeError.
 */
export function decodeFloats(
  bytes: Uint8Array,
  byteOffset: number,
  count: number,
  dtype: FloatDType,
  littleEndian = true,
): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, count * FLOAT_DTYPE_BYTES[dtype]);
  const out = new Float32Array(count);
  switch (dtype) {
    case "f32":
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, littleEndian);
      break;
    case "f64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, littleEndian);
      break;
    case "f16":
      for (let i = 0; i < count; i++) out[i] = f16BitsToF32(view.getUint16(2 * i, littleEndian));
      break;
    case "bf16": {
      const widen = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        widen.setUint32(0, view.getUint16(2 * i, littleEndian) << 16);
        out[i] = widen.getFloat32(0);
      }
      break;
    }
  }
  return out;
}

/** Encodes values as little-endian `dtype` (f32 exact; f16/bf16 round to nearest even). */
export function encodeFloatsLE(values: ArrayLike<number>, dtype: FloatDType): Uint8Array {
  const out = new Uint8Array(values.length * FLOAT_DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (dtype === "f32") view.setFloat32(4 * i, v, true);
    else if (dtype === "f64") view.setFloat64(8 * i, v, true);
    else if (dtype === "f16") view.setUint16(2 * i, f32ToF16Bits(v), true);
    else view.setUint16(2 * i, f32ToBf16Bits(v), true);
  }
  return out;
}
