import { test } from "node:test";
import assert from "node:assert/strict";
import { scanStops } from "./stopStrings.js";

test("finds the earliest stop string", () => {
  assert.deepEqual(scanStops("abc END xyz STOP", ["STOP", "END"]), { safeLength: 4, stopAt: 4 });
});

test("holds back a suffix that may become a stop string", () => {
  assert.deepEqual(scanStops("hello wor", ["world!"]), { safeLength: 6, stopAt: -1 });
  assert.deepEqual(scanStops("hello", ["xyz"]), { safeLength: 5, stopAt: -1 });
});

test("no stops: everything is safe", () => {
  assert.deepEqual(scanStops("anything", []), { safeLength: 8, stopAt: -1 });
});
