/**
 * @module gate/tensorView
 *
 * A tensor as `torch.save` stores it: a strided view (shape, stride, element
 * offset) into a flat storage. The view is checked against its storage's
 * element count before anything is read, so that reading it costs no more
 * than the storage's own bytes: a view may not reach past its storage, and
 * may not repeat elements through a zero stride (a 2^30-element view of one
 * float is a few hundred bytes of pickle).
 */
import { decodeFloats, FLOAT_DTYPE_BYTES, type FloatDType } from "../util/floats.js";

/** Where a tensor's elements sit in its storage, in elements. */
export interface TensorView {
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly offset: number;
}

/** More dimensions than any parameter has. */
export const MAX_RANK = 16;
/** Elements of one tensor: 2^31 (8 GiB as f32) is past any gate and past what one Float32Array may hold. */
export const MAX_ELEMENTS = 2 ** 31;

/** The view's element count (the product of its shape; 1 for a scalar). */
export function viewNumel(view: TensorView): number {
  return view.shape.includes(0) ? 0 : view.shape.reduce((a, b) => a * b, 1);
}

/**
 * Why the view cannot be read from a storage of `storageNumel` elements, or
 * null when it can. Shape, stride and offset are non-negative integers (the
 * caller has checked their types); this checks what they add up to.
 */
export function viewProblem(view: TensorView, storageNumel: number): string | null {
  const { shape, stride, offset } = view;
  if (shape.length !== stride.length) return `has ${shape.length} sizes but ${stride.length} strides`;
  if (shape.length > MAX_RANK) return `has ${shape.length} dimensions, more than ${MAX_RANK}`;
  let numel = 1;
  for (const n of shape) {
    numel *= n;
    if (numel > MAX_ELEMENTS) return `has shape [${shape.join(", ")}], more than ${MAX_ELEMENTS} elements`;
  }
  if (numel === 0) return offset <= storageNumel ? null : `starts at element ${offset} of a storage of ${storageNumel}`;
  const repeated = shape.findIndex((n, i) => n > 1 && stride[i] === 0);
  if (repeated >= 0) return `has stride 0 in dimension ${repeated}, repeating one storage element ${shape[repeated]} times; not a saved parameter`;
  const last = shape.reduce((s, n, i) => s + (n - 1) * stride[i]!, offset);
  if (last >= storageNumel) return `reaches element ${last} of a storage of ${storageNumel} elements`;
  return null;
}

/**
 * Copies a checked view's elements out of its storage bytes in row-major
 * order, widened to f32. The caller has checked it with {@link viewProblem}.
 */
export function copyView(view: TensorView, storageBytes: Uint8Array, dtype: FloatDType, littleEndian: boolean): Float32Array {
  const count = viewNumel(view);
  if (count === 0) return new Float32Array(0);
  const { shape, stride, offset } = view;
  const last = shape.reduce((s, n, i) => s + (n - 1) * stride[i]!, offset);
  if ((last + 1) * FLOAT_DTYPE_BYTES[dtype] > storageBytes.length) throw new RangeError("copyView: view not checked against its storage");
  const span = decodeFloats(storageBytes, offset * FLOAT_DTYPE_BYTES[dtype], last - offset + 1, dtype, littleEndian);
  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d]! > 1 && stride[d] !== expect) contiguous = false;
    expect *= shape[d]!;
  }
  if (contiguous) return span;
  // NOTE: a strided view (e.g. a saved transpose): walk the index odometer.
  const out = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0, src = 0; i < count; i++) {
    out[i] = span[src]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      src += stride[d]!;
      if (++index[d]! < shape[d]!) break;
      src -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}
