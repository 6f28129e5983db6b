import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { crc32, isZip, readStoredEntry, readZipDirectory, writeStoredZip, ZipFormatError } from "./zip.js";

const text = (s: string) => new TextEncoder().encode(s);

test("crc32 of known strings", () => {
  assert.equal(crc32(text("")), 0);
  assert.equal(crc32(text("123456789")), 0xcbf43926);
});

test("writeStoredZip round-trips through readZipDirectory/readStoredEntry", () => {
  const zip = writeStoredZip([
    { name: "a/data.pkl", data: text("hello") },
    { name: "a/data/0", data: new Uint8Array([1, 2, 3, 4]) },
    { name: "empty", data: new Uint8Array(0) },
  ]);
  assert.ok(isZip(zip));
  const dir = readZipDirectory(zip, "t.zip");
  assert.deepEqual([...dir.keys()], ["a/data.pkl", "a/data/0", "empty"]);
  assert.deepEqual(Array.from(readStoredEntry(zip, dir.get("a/data/0")!, "t.zip")), [1, 2, 3, 4]);
  assert.equal(new TextDecoder().decode(readStoredEntry(zip, dir.get("a/data.pkl")!, "t.zip")), "hello");
  assert.equal(readStoredEntry(zip, dir.get("empty")!, "t.zip").length, 0);
});

test("reads a real torch.save archive (data descriptors, zip64 end record, padded local extras)", () => {
  const path = new URL("../../models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-0.16.pt", import.meta.url);
  const bytes = new Uint8Array(readFileSync(path));
  const dir = readZipDirectory(bytes, "gate.pt");
  const byteorder = readStoredEntry(bytes, dir.get("wgkv-tiny-chat-gate-0.16/byteorder")!, "gate.pt");
  assert.equal(new TextDecoder().decode(byteorder), "little");
  assert.equal(readStoredEntry(bytes, dir.get("wgkv-tiny-chat-gate-0.16/data/2")!, "gate.pt").length, 262144);
});

test("refuses truncated, corrupt, compressed and encrypted archives", () => {
  const zip = writeStoredZip([{ name: "x", data: text("payload") }]);
  assert.throws(() => readZipDirectory(zip.subarray(0, zip.length - 5), "t.zip"), ZipFormatError);
  assert.throws(() => readZipDirectory(text("not a zip at all, just some text"), "t.zip"), /t\.zip: not a readable zip/);

  const corrupt = zip.slice();
  corrupt[31] ^= 0xff; // a byte of the payload
  const entry = readZipDirectory(corrupt, "t.zip").get("x")!;
  assert.throws(() => readStoredEntry(corrupt, entry, "t.zip"), /CRC-32/);

  assert.throws(() => readStoredEntry(zip, { ...entry, method: 8 }, "t.zip"), /compressed \(method 8\)/);
  assert.throws(() => readStoredEntry(zip, { ...entry, flags: 1 }, "t.zip"), /encrypted/);
  assert.throws(() => readStoredEntry(zip, { ...entry, localHeaderOffset: 3 }, "t.zip"), /local header missing/);
});

/** Byte offsets of the central directory's entries (signature PK\x01\x02). */
function centralEntries(zip: Uint8Array): number[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const at: number[] = [];
  for (let p = 0; p + 4 <= zip.length; p++) if (view.getUint32(p, true) === 0x02014b50) at.push(p);
  return at;
}

test("refuses hostile directories: entries naming the same bytes, and a zip64 field past its extra field", () => {
  const zip = writeStoredZip([{ name: "a", data: text("first payload") }, { name: "b", data: text("second payload") }]);
  const view = new DataView(zip.buffer);
  const [a, b] = centralEntries(zip);
  // b's entry made to point at a's local header (a reader would check the same data once per name)
  const aliased = zip.slice();
  new DataView(aliased.buffer).setUint32(b! + 42, view.getUint32(a! + 42, true), true);
  assert.throws(() => readZipDirectory(aliased, "t.zip"), /t\.zip: not a readable zip archive \(entry [ab] overlaps the entry before it\)/);

  // an entry whose size is saturated, so a zip64 value is due, with an extra field too short to hold it
  const parts = [...zip.subarray(0, b! + 46)], name = [...zip.subarray(b! + 46, b! + 47)];
  const entry = new Uint8Array([...zip.subarray(b!, b! + 46), ...name, 1, 0, 4, 0, 0, 0, 0, 0]);
  const e = new DataView(entry.buffer);
  e.setUint32(24, 0xffffffff, true); // size saturated
  e.setUint16(30, 8, true); // an 8-byte extra field: id 1, length 4, 4 bytes
  const rest = zip.subarray(b! + 47);
  const hostile = new Uint8Array([...parts.slice(0, b!), ...entry, ...rest]);
  const hv = new DataView(hostile.buffer);
  const eocd = hostile.length - 22;
  hv.setUint32(eocd + 12, hv.getUint32(eocd + 12, true) + 8, true); // the directory grew by the extra field
  assert.throws(() => readZipDirectory(hostile, "t.zip"), /entry 1 has a truncated zip64 extra field/);
});
