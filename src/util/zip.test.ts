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
