/**
 * @module backends/conformance/context
 *
 * What every part of the backend conformance suite gets: the backend under
 * test (one instance shared by a suite's tests, as the engine shares one),
 * a way to make a fresh one (tests that dispose it or count its reads), and
 * small helpers to move host arrays in and out through the interface only.
 */
import type { Backend, DType, HostArray, Tensor } from "../backend.js";

export interface ConformanceContext {
  /** The shared backend; valid inside tests. */
  readonly backend: Backend;
  /** A fresh backend of the same kind; the test disposes it. */
  create(): Promise<Backend>;
  /**
   * The backend's float arithmetic may flush f32 subnormals to zero (WGSL
   * allows it; NVIDIA does). Page values are read back through attention's
   * arithmetic (pageProbe.ts), so a subnormal may then read as 0; such a
   * backend checks its stored page bits exactly in a test of its own.
   */
  readonly subnormalsMayFlush?: boolean;
}

/** A tensor holding `data` (queued write). */
export function tensorFrom(b: Backend, shape: readonly number[], dtype: DType, data: HostArray, label: string): Tensor {
  const t = b.createTensor(shape, dtype, label);
  b.write(t, data);
  return t;
}

/** f32 tensor holding `data`. */
export function f32Tensor(b: Backend, shape: readonly number[], data: ArrayLike<number>, label: string): Tensor {
  return tensorFrom(b, shape, "f32", Float32Array.from(data), label);
}

/** i32 tensor holding `data`. */
export function i32Tensor(b: Backend, shape: readonly number[], data: ArrayLike<number>, label: string): Tensor {
  return tensorFrom(b, shape, "i32", Int32Array.from(data), label);
}

/** f32 tensor filled with `value` (a sentinel that shows which elements an op wrote). */
export function filledF32(b: Backend, shape: readonly number[], value: number, label: string): Tensor {
  const t = b.createTensor(shape, "f32", label);
  b.write(t, new Float32Array(t.numel).fill(value));
  return t;
}

/** Reads one f32 tensor. */
export async function readF32(b: Backend, t: Tensor, numElements?: number): Promise<Float32Array> {
  const [out] = await b.read([{ tensor: t, numElements }]);
  if (!(out instanceof Float32Array)) throw new TypeError(`${t.label} read back as ${out.constructor.name}`);
  return out;
}

/** Reads one i32 tensor. */
export async function readI32(b: Backend, t: Tensor): Promise<Int32Array> {
  const [out] = await b.read([{ tensor: t }]);
  if (!(out instanceof Int32Array)) throw new TypeError(`${t.label} read back as ${out.constructor.name}`);
  return out;
}

/** Reads one u8 tensor. */
export async function readU8(b: Backend, t: Tensor): Promise<Uint8Array> {
  const [out] = await b.read([{ tensor: t }]);
  if (!(out instanceof Uint8Array)) throw new TypeError(`${t.label} read back as ${out.constructor.name}`);
  return out;
}

/** Destroys tensors a test made on the shared backend. */
export function destroyAll(b: Backend, tensors: readonly Tensor[]): void {
  for (const t of tensors) b.destroyTensor(t);
}
