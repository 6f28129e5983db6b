/**
 * Node's idle for the WebGPU runtime's reads: it lasts about as long as
 * asked (a timer for the bulk, a blocking wait for the end), short and long.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { idleWithoutPolling } from "./idleWithoutPolling.js";

test("idleWithoutPolling: idles at least the time asked and not far past it", async () => {
  for (const ms of [0.6, 2.5, 12]) {
    const start = performance.now();
    await idleWithoutPolling(ms);
    const took = performance.now() - start;
    assert.ok(took >= ms - 0.05, `${ms} ms asked, ${took.toFixed(2)} ms idled`);
    // NOTE: generous: a loaded CI machine may run the timer late
    assert.ok(took < ms + 50, `${ms} ms asked, ${took.toFixed(2)} ms idled`);
  }
});
