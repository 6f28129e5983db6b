/**
 * Byte ranges as `wgkv web` answers them (RFC 9110 §14.1.2): first-last,
 * open-ended and suffix ranges, clamped to the file; past the end is 416;
 * anything else (other units, lists, reversed bounds) gets the whole file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRange } from "./fileResponse.js";

test("ranges of a 100-byte file", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-200", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=50-", 100), { start: 50, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-500", 100), { start: 0, end: 99 });
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
  for (const other of [undefined, "", "items=0-9", "bytes=0-9,20-29", "bytes=9-0", "bytes=-", "bytes=a-b"]) assert.equal(parseRange(other, 100), null, String(other));
});
