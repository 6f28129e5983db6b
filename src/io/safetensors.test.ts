import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GateFormatError } from "../gate/errors.js";
import { ModelLoadError } from "../errors.js";
import { decodeEntry, parseSafetensors, writeSafetensors } from "./safetensors.js";
import { findDuplicateKey } from "../util/jsonKeys.js";

/** A safetensors file from raw header text and data bytes, written here byte by byte. */
function file(headerText: string, data: Uint8Array | number = 0): Uint8Array {
  const header = new TextEncoder().encode(headerText);
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + header.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(body, 8 + header.length);
  return out;
}

const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

/** Asserts a one-line error of `type` that starts with `x.safetensors: ` and matches `re`. */
function refuses(bytes: Uint8Array, re: RegExp, type: new (...a: never[]) => Error = ModelLoadError): void {
  assert.throws(
    () => parseSafetensors(bytes, "x.safetensors", type === GateFormatError ? { errorType: GateFormatError } : {}),
    (e: unknown) => {
      assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
      const message = (e as Error).message;
      assert.ok(message.startsWith("x.safetensors: "), message);
      assert.ok(!message.includes("\n"), message);
      assert.match(message, re);
      return true;
    },
  );
}

describe("io/safetensors", () => {
  test("reads a hand-built file: offsets, dtypes, values and metadata", () => {
    const data = new Uint8Array(4 * 3 + 2 * 2 + 8);
    const view = new DataView(data.buffer);
    [1.5, -2, 0.25].forEach((v, i) => view.setFloat32(4 * i, v, true));
    view.setUint16(12, 0x3c00, true); // f16 1.0
    view.setUint16(14, 0xc000, true); // f16 -2.0
    view.setFloat64(16, 0.1, true);
    const bytes = file(JSON.stringify({
      __metadata__: { format: "pt" },
      a: entry("F32", [3], 0, 12),
      b: entry("F16", [1, 2], 12, 16),
      c: entry("F64", [], 16, 24),
      empty: entry("BF16", [0, 7], 24, 24),
    }), data);
    const { entries, metadata } = parseSafetensors(bytes, "x.safetensors");
    assert.deepEqual(metadata, { format: "pt" });
    const headerEnd = bytes.length - data.length;
    assert.deepEqual(entries.map((e) => [e.name, e.dtype, e.shape, e.offset - headerEnd, e.byteLength]), [
      ["a", "F32", [3], 0, 12], ["b", "F16", [1, 2], 12, 4], ["c", "F64", [], 16, 8], ["empty", "BF16", [0, 7], 24, 0],
    ]);
    assert.deepEqual(entries.map((e) => Array.from(decodeEntry(bytes, e))), [[1.5, -2, 0.25], [1, -2], [Math.fround(0.1)], []]);
  });

  test("writeSafetensors output: aligned, packed, read back exactly", () => {
    const bytes = writeSafetensors([["w", { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }], ["b", { shape: [1], data: new Float32Array([-0.5]) }]], { k: "v" });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    assert.equal(bytes.length, 8 + headerLength + 20);
    const { entries, metadata } = parseSafetensors(bytes, "w.safetensors");
    assert.deepEqual(metadata, { k: "v" });
    assert.deepEqual(entries.map((e) => Array.from(decodeEntry(bytes, e))), [[1, 2, 3, 4], [-0.5]]);
    assert.throws(() => writeSafetensors([["w", { shape: [3], data: new Float32Array(2) }]]), /2 values for shape \[3\]/);
    assert.throws(() => writeSafetensors([["w", { shape: [1], data: new Float32Array(1) }], ["w", { shape: [1], data: new Float32Array(1) }]]), /given twice/);
  });

  test("the data section bound is exact: ending at the last byte is read, 8 bytes past it is refused", () => {
    // 16 data bytes; a tensor of 4 f32 at [0, 16] ends exactly at the end of the file.
    const ok = file(JSON.stringify({ w: entry("F32", [4], 0, 16) }), 16);
    assert.equal(parseSafetensors(ok, "x.safetensors").entries[0]!.byteLength, 16);
    // The same tensor moved 8 bytes later ends 8 bytes past the end (a bound that forgot the 8-byte length field would pass it).
    refuses(file(JSON.stringify({ w: entry("F32", [4], 8, 24) }), 16), /tensor "w" ends at byte \d+ but the file has only \d+ bytes/);
    refuses(file(JSON.stringify({ w: entry("F32", [4], 1, 17) }), 16), /tensor "w" ends at byte/);
    // begin past the end with an empty tensor: harmless but still outside the file.
    refuses(file(JSON.stringify({ w: entry("F32", [0], 20, 20) }), 16), /tensor "w" ends at byte/);
  });

  test("overlapping or aliasing tensors are refused", () => {
    refuses(file(JSON.stringify({ a: entry("F32", [2], 0, 8), b: entry("F32", [2], 0, 8) }), 8), /tensor "b" \(data_offsets \[0, 8\]\) overlaps tensor "a" \(\[0, 8\]\)/);
    refuses(file(JSON.stringify({ a: entry("F32", [3], 0, 12), b: entry("F32", [2], 8, 16) }), 16), /tensor "b" .* overlaps tensor "a"/);
    // listed out of order, overlapping at the end of the later one
    refuses(file(JSON.stringify({ late: entry("F16", [4], 6, 14), early: entry("F16", [4], 0, 8) }), 16), /tensor "late" .* overlaps tensor "early"/);
    // adjacent is fine, and so are empty tensors anywhere inside
    assert.equal(parseSafetensors(file(JSON.stringify({ a: entry("F32", [2], 0, 8), b: entry("F32", [2], 8, 16), e: entry("F32", [0], 4, 4) }), 16), "x").entries.length, 3);
  });

  test("data_offsets must match dtype and shape", () => {
    refuses(file(JSON.stringify({ w: entry("F32", [2, 3], 0, 20) }), 24), /tensor "w" spans 20 bytes but shape \[2, 3\] of F32 needs 24/);
    refuses(file(JSON.stringify({ w: entry("BF16", [4], 8, 0) }), 8), /tensor "w" spans -8 bytes/);
    refuses(file(JSON.stringify({ w: entry("F32", [2 ** 40, 2 ** 40], 0, 8) }), 8), /tensor "w" has an absurd shape/);
    refuses(file(JSON.stringify({ w: { dtype: "F32", shape: [1], data_offsets: [0] } }), 4), /tensor "w" has malformed data_offsets/);
    refuses(file(JSON.stringify({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4.5] } }), 4), /tensor "w" has malformed data_offsets/);
    refuses(file(JSON.stringify({ w: entry("F32", [-1], 0, 0) })), /tensor "w" has a malformed shape/);
    refuses(file(JSON.stringify({ w: entry("I64", [1], 0, 8) }), 8), /tensor "w" has unsupported dtype "I64" \(supported: F32, F16, BF16, F64\)/);
    refuses(file(JSON.stringify({ w: [1, 2] })), /tensor "w" has no header entry object/);
  });

  test("header length beyond the file or the limit, non-object and non-JSON headers, duplicate names", () => {
    const good = file(JSON.stringify({ w: entry("F32", [1], 0, 4) }), 4);
    refuses(new Uint8Array(5), /truncated safetensors file \(5 bytes/);
    refuses(good.subarray(0, 20), /declares a \d+-byte header but the file has only 20 bytes/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
    refuses(huge, /declares a 9223372036854775808-byte header, more than the 104857600-byte limit/);
    refuses(file("[1, 2]"), /header is not an object/);
    refuses(file("null"), /header is not an object/);
    refuses(file("{not json\n}"), /malformed safetensors header JSON/);
    // 10^6 nested brackets: refused by a scan before the parser spends memory on them
    const started = performance.now();
    refuses(file("[".repeat(1e6) + "]".repeat(1e6)), /malformed safetensors header JSON \(nested deeper than a safetensors header\)/);
    assert.ok(performance.now() - started < 1000);
    refuses(file('{"w": {"dtype": "F32", "shape": [[[1]]], "data_offsets": [0, 4]}}', 4), /nested deeper than a safetensors header/);
    refuses(file('{"w": {"dtype": "[[[[{{{{", "shape": [1], "data_offsets": [0, 4]}}', 4), /unsupported dtype "\[\[\[\[\{\{\{\{"/);
    const latin1 = file("{}");
    latin1.set([0xff], 9);
    refuses(latin1, /malformed safetensors header JSON \(not UTF-8\)/);
    refuses(file('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', 8), /header names "w" twice/);
    refuses(file('{"__metadata__": {"a": 1}}'), /"__metadata__" must map strings to strings/);
    refuses(file('{"__metadata__": ["a"]}'), /"__metadata__" must map strings to strings/);
  });

  test("the caller picks the error class (gates get GateFormatError)", () => {
    refuses(file("[]"), /header is not an object/, GateFormatError);
  });
});

describe("findDuplicateKey", () => {
  test("finds a repeated key in any object, decoded; arrays and string contents do not count", () => {
    assert.equal(findDuplicateKey('{"a": 1, "b": {"c": 1, "c": 2}}'), "c");
    assert.equal(findDuplicateKey('{"ab": 1, "a\\u0062": 2}'), "ab");
    assert.equal(findDuplicateKey('{"a": ["a", "a"], "b": "a", "c": {"a": {"a": 1}}}'), null);
    assert.equal(findDuplicateKey('{"q\\"": "\\"q\\":", "q\\"": 1}'), 'q"');
    assert.equal(findDuplicateKey('[{"x": 1}, {"x": 2}]'), null);
  });
});
