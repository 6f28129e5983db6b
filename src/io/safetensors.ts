/**
 * @module io/safetensors
 *
 * The one safetensors reader and writer, for model weights and gate files
 * alike. A file is an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * then the data section; offsets are relative to its start.
 *
 * Every entry is checked against the file before any tensor is read: a known
 * dtype, a shape of non-negative integers, `end - begin` equal to the bytes
 * that dtype and shape need, `end` inside the data section, no two tensors
 * sharing a byte, no name given twice. A file that fails gets a one-line error
 * naming the file and, where there is one, the tensor.
 */
import { causeText, ModelLoadError, type WgkvError } from "../errors.js";
import { decodeFloats, encodeFloatsLE, FLOAT_DTYPE_BYTES, type FloatDType } from "../util/floats.js";
import { findDuplicateKey, jsonDeeperThan } from "../util/jsonKeys.js";
import { describeFile, type FileSource } from "./fileSource.js";

/** The float dtypes read; each caller may accept fewer. */
export type SafetensorsDType = "F32" | "F16" | "BF16" | "F64";

/** The {@link FloatDType} of each safetensors dtype. */
export const SAFETENSORS_FLOAT_DTYPES: Readonly<Record<SafetensorsDType, FloatDType>> = { F32: "f32", F16: "f16", BF16: "bf16", F64: "f64" };

/** One tensor of a header, located in its file. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

/** A checked header: its tensors in header order and its metadata strings. */
export interface SafetensorsHeader {
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** How a caller wants failures reported and which dtypes it takes. */
export interface SafetensorsReadOptions {
  /** The error class thrown (default {@link ModelLoadError}). */
  readonly errorType?: new (message: string) => WgkvError;
  /** Accepted dtypes (default all of {@link SafetensorsDType}). */
  readonly dtypes?: readonly SafetensorsDType[];
}

/** The format's own limit on the header (as the reference implementation has it). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const ALL_DTYPES = Object.keys(SAFETENSORS_FLOAT_DTYPES) as SafetensorsDType[];
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads the 8-byte header length and checks it against the limit and the file size. */
export function parseHeaderLength(first8: Uint8Array, fileSize: number, file: string, options: SafetensorsReadOptions = {}): number {
  const fail = failWith(file, options);
  if (fileSize < 8 || first8.length < 8) fail(`truncated safetensors file (${fileSize} bytes, no header length)`);
  const declared = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(`malformed safetensors header (declares a ${declared}-byte header, more than the ${MAX_HEADER_BYTES}-byte limit; not a safetensors file?)`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > fileSize) {
    fail(`malformed safetensors header (declares a ${headerLength}-byte header but the file has only ${fileSize} bytes; truncated file?)`);
  }
  return headerLength;
}

/**
 * Parses and checks the header JSON (the `headerBytes.length` bytes after the
 * length) of a file of `fileSize` bytes.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file: string, options: SafetensorsReadOptions = {}): SafetensorsHeader {
  const fail = failWith(file, options);
  let text = "";
  let header: unknown;
  try {
    text = utf8.decode(headerBytes);
    // NOTE: a header is 3 deep (entries, their fields, shape lists); deeper nesting would only cost the parser
    if (jsonDeeperThan(text, 4)) throw new SyntaxError("nested deeper than a safetensors header");
    header = JSON.parse(text);
  } catch (err) {
    fail(`malformed safetensors header JSON (${err instanceof TypeError ? "not UTF-8" : causeText(err)})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("safetensors header is not an object");
  const duplicate = findDuplicateKey(text);
  if (duplicate !== null) fail(`safetensors header names ${JSON.stringify(duplicate)} twice`);

  const dataStart = 8 + headerBytes.length;
  const dtypes = options.dtypes ?? ALL_DTYPES;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const ok = typeof info === "object" && info !== null && !Array.isArray(info) && Object.values(info).every((v) => typeof v === "string");
      if (!ok) fail('safetensors header "__metadata__" must map strings to strings');
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    entries.push(parseEntry(name, info, dataStart, fileSize, dtypes, fail));
  }
  checkNoOverlap(entries, dataStart, fail);
  return { entries, metadata };
}

function parseEntry(name: string, info: unknown, dataStart: number, fileSize: number, dtypes: readonly SafetensorsDType[], fail: (why: string) => never): SafetensorsEntry {
  const bad = (why: string): never => fail(`tensor ${JSON.stringify(name)} ${why}`);
  if (typeof info !== "object" || info === null || Array.isArray(info)) bad("has no header entry object");
  const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== "string" || !(dtypes as readonly string[]).includes(dtype)) {
    bad(`has unsupported dtype ${JSON.stringify(dtype)} (supported: ${dtypes.join(", ")})`);
  }
  const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) bad("has a malformed shape");
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) bad("has malformed data_offsets");
  const [begin, end] = offsets as [number, number];
  const dims = shape as number[];
  const itemBytes = FLOAT_DTYPE_BYTES[SAFETENSORS_FLOAT_DTYPES[dtype as SafetensorsDType]];
  const numel = dims.includes(0) ? 0 : dims.reduce((a, b) => a * b, 1);
  // NOTE: a product past 2^53 is inexact; no file holds that many bytes anyway.
  if (numel * itemBytes > Number.MAX_SAFE_INTEGER) bad(`has an absurd shape [${dims.join(", ")}]`);
  const byteLength = numel * itemBytes;
  if (end - begin !== byteLength) bad(`spans ${end - begin} bytes but shape [${dims.join(", ")}] of ${dtype} needs ${byteLength}`);
  if (dataStart + end > fileSize) bad(`ends at byte ${dataStart + end} but the file has only ${fileSize} bytes (truncated file?)`);
  return { name, dtype: dtype as SafetensorsDType, shape: dims, offset: dataStart + begin, byteLength };
}

/** Two tensors must not share a byte: a write to one would change the other, and a reader could be fooled about sizes. */
function checkNoOverlap(entries: readonly SafetensorsEntry[], dataStart: number, fail: (why: string) => never): void {
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const e = sorted[i]!;
    if (e.offset < prev.offset + prev.byteLength) {
      const span = (t: SafetensorsEntry) => `[${t.offset - dataStart}, ${t.offset - dataStart + t.byteLength}]`;
      fail(`tensor ${JSON.stringify(e.name)} (data_offsets ${span(e)}) overlaps tensor ${JSON.stringify(prev.name)} (${span(prev)})`);
    }
  }
}

/** Reads and checks the header of `name` in `source`, reading only the header's bytes. */
export async function readSafetensorsHeader(source: FileSource, name: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsHeader> {
  const where = describeFile(source, name);
  const fileSize = await source.size(name);
  const headerLength = parseHeaderLength(fileSize >= 8 ? await source.readRange(name, 0, 8) : new Uint8Array(0), fileSize, where, options);
  return parseSafetensorsHeader(await source.readRange(name, 8, headerLength), fileSize, where, options);
}

/** Checks the header of a safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, file: string, options: SafetensorsReadOptions = {}): SafetensorsHeader {
  const headerLength = parseHeaderLength(bytes.subarray(0, 8), bytes.length, file, options);
  return parseSafetensorsHeader(bytes.subarray(8, 8 + headerLength), bytes.length, file, options);
}

/** One tensor's values widened to f32, from the file's bytes (its entry has been checked). */
export function decodeEntry(bytes: Uint8Array, entry: SafetensorsEntry): Float32Array {
  const dtype = SAFETENSORS_FLOAT_DTYPES[entry.dtype];
  return decodeFloats(bytes, entry.offset, entry.byteLength / FLOAT_DTYPE_BYTES[dtype], dtype);
}

/** A tensor to write: row-major f32 values. */
export interface SafetensorsTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Serializes f32 tensors (in iteration order, packed without gaps) and string metadata. */
export function writeSafetensors(tensors: Iterable<readonly [string, SafetensorsTensor]>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header["__metadata__"] = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    // Programming errors, not user input: the header would be ambiguous or wrong.
    if (name in header) throw new Error(`writeSafetensors: tensor name ${JSON.stringify(name)} given twice`);
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`writeSafetensors: ${name} has ${t.data.length} values for shape [${t.shape.join(", ")}]`);
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

function failWith(file: string, options: SafetensorsReadOptions): (why: string) => never {
  const ErrorType = options.errorType ?? ModelLoadError;
  return (why) => {
    throw new ErrorType(`${file}: ${why}`);
  };
}
