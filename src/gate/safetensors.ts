/**
 * @module gate/safetensors
 *
 * Reads and writes safetensors files of float tensors: an 8-byte little-endian
 * header length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}`, then the raw little-endian data, offsets
 * relative to the end of the header. Writes f32 only; reads F32, F16, BF16 and
 * F64 (widened to f32).
 */
import { decodeFloats, encodeFloatsLE, FLOAT_DTYPE_BYTES, type FloatDType } from "../util/floats.js";
import { GateFormatError } from "./errors.js";
import type { CheckpointTensor } from "./torchCheckpoint.js";

/** A safetensors file's contents. */
export interface SafetensorsContents {
  readonly tensors: Map<string, CheckpointTensor>;
  readonly metadata: Record<string, string>;
}

const DTYPES: Readonly<Record<string, FloatDType>> = { F32: "f32", F16: "f16", BF16: "bf16", F64: "f64" };
const MAX_HEADER_BYTES = 100_000_000; // the format's own limit

/** Serializes f32 tensors (in iteration order) and string metadata. */
export function writeSafetensors(
  tensors: Iterable<readonly [string, { readonly shape: readonly number[]; readonly data: Float32Array }]>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header["__metadata__"] = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const blob = encodeFloatsLE(t.data, "f32");
    header[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [offset, offset + blob.length] };
    blobs.push(blob);
    offset += blob.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // NOTE: pad the header with spaces (allowed by the format) so the data starts 8-byte aligned.
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let p = 8 + headerLength;
  for (const blob of blobs) {
    out.set(blob, p);
    p += blob.length;
  }
  return out;
}

/** Parses a safetensors file; throws {@link GateFormatError} naming `fileName` when it is malformed. */
export function readSafetensors(bytes: Uint8Array, fileName: string): SafetensorsContents {
  const fail = (why: string): never => {
    throw new GateFormatError(`${fileName}: not a readable safetensors file (${why})`);
  };
  if (bytes.length < 8) fail("shorter than its 8-byte header length");
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) fail(`header length ${headerLength} exceeds the file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    fail("header is not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return fail("header is not a JSON object");
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, CheckpointTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const ok = typeof entry === "object" && entry !== null && Object.values(entry).every((v) => typeof v === "string");
      if (!ok) fail("__metadata__ must map strings to strings");
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const fdtype = typeof dtype === "string" ? DTYPES[dtype] : undefined;
    if (!fdtype) return fail(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; only F32, F16, BF16 and F64 are read`);
    const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(isCount)) return fail(`tensor '${name}' has a malformed shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) return fail(`tensor '${name}' has malformed data_offsets`);
    const [begin, end] = offsets as [number, number];
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    if (end - begin !== count * FLOAT_DTYPE_BYTES[fdtype] || end > dataLength) {
      fail(`tensor '${name}' data_offsets [${begin}, ${end}] do not fit its shape or the file`);
    }
    tensors.set(name, { dtype: fdtype, shape: shape as number[], data: decodeFloats(bytes, dataStart + begin, count, fdtype) });
  }
  return { tensors, metadata };
}
