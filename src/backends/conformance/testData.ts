/**
 * @module backends/conformance/testData
 *
 * Seeded test data and comparisons shared by the backend and kernel suites.
 * Every random number comes from util/random.ts's `createRandom`, the one
 * generator of the project, so a failing case reproduces from its seed.
 * NOTE: no node:* import here (the core's rule, platformNeutral.test.ts):
 * failed checks throw a plain Error, which node:test reports as a failure.
 */
import type { KvDType, WeightData } from "../backend.js";
import { createRandom } from "../../util/random.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";

/** A seeded generator with the draws the suites need. */
export class TestRandom {
  readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = createRandom(seed);
  }

  /** Uniform in [-1, 1). */
  uniform(): number {
    return this.next() * 2 - 1;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform values in [-scale, scale) as f32. */
  floats(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform() * scale;
    return out;
  }

  /** A random permutation of 0 .. n-1. */
  permutation(n: number): number[] {
    const out = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** One element of a list. */
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }
}

/**
 * WGKV_REPORT_ERRORS=1 prints every measured error next to its tolerance:
 * how the tolerances were chosen, and how to re-check them on a new backend.
 */
const REPORT_ERRORS = typeof process !== "undefined" && process.env.WGKV_REPORT_ERRORS === "1";

/** max |actual - expected| / max |expected| (NaN when either side holds a NaN or the lengths differ). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return NaN;
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(e)) return NaN;
    maxErr = Math.max(maxErr, e);
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxErr / (maxRef || 1);
}

/** Fails unless relativeError(actual, expected) <= tolerance (a NaN anywhere fails). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  check(actual.length === expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  const rel = relativeError(actual, expected);
  if (REPORT_ERRORS) console.log(`relative error ${rel.toExponential(2)} (tolerance ${tolerance}): ${what}`);
  check(rel <= tolerance, `${what}: relative error ${rel} > ${tolerance}`);
}

/** Fails unless the two arrays hold the same numbers (NaN equals NaN; +0 equals -0). */
export function assertSameNumbers(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  check(actual.length === expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    check(a === e || (Number.isNaN(a) && Number.isNaN(e)), `${what}: element ${i} is ${a}, expected ${e}`);
  }
}

/** Throws an Error with `message` unless `condition`. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** x as a KV page of `dtype` stores it and reads it back (16-bit: round to nearest even, util/halfFloat.ts). */
export function roundToKv(dtype: KvDType): (x: number) => number {
  if (dtype === "f32") return Math.fround;
  if (dtype === "f16") return (x) => f16BitsToF32(f32ToF16Bits(x));
  return (x) => bf16BitsToF32(f32ToBf16Bits(x));
}

/** A weight as uploadWeight takes it: little-endian bytes of `dtype`. */
export function weightData(shape: readonly number[], values: ArrayLike<number>, dtype: "F32" | "F16" | "BF16" = "F32"): WeightData {
  const n = values.length;
  const bytes = new Uint8Array(n * (dtype === "F32" ? 4 : 2));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    if (dtype === "F32") view.setFloat32(4 * i, values[i], true);
    else view.setUint16(2 * i, dtype === "F16" ? f32ToF16Bits(values[i]) : f32ToBf16Bits(values[i]), true);
  }
  return { dtype, shape, bytes };
}

/**
 * Floats that exercise 16-bit rounding: ordinary values of every magnitude,
 * exact ties between two halves and two bfloats, f16 subnormals and
 * underflow, values past f16's range, ±0, infinities and NaN.
 */
export function roundingFloats(random: TestRandom, n: number): Float32Array {
  const special = [
    0, -0, Infinity, -Infinity, NaN, 65504, 65519.99, 65520, 1e6, -1e-40, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11,
    1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 2 ** -14 * (1 - 2 ** -11), 3 * 2 ** -25,
  ];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = i < special.length ? special[i] : random.next() < 0.3 ? random.pick(special) : random.uniform() * 10 ** Math.round(random.uniform() * 6);
  return out;
}

/** The f32 just above x (x finite, positive). */
export function nextF32Up(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] += 1;
  return f[0];
}

/** The f32 just below x (x finite, positive). */
export function nextF32Down(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] -= 1;
  return f[0];
}
