/**
 * @module engine/engineConfig.test
 *
 * The engine's settings: the KV memory budget as bytes, a size with a unit
 * (KiB/MiB/GiB powers of two, KB/MB/GB powers of ten) or a fraction in
 * (0, 1] of what the backend can still allocate; the page pool it sizes; the
 * step limits and their defaults; and one-line errors that name the option.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { type EngineOptions, formatBytes, parseKvMemory, resolveEngineConfig } from "./engineConfig.js";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function refuses(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidInputError, String(err));
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

test("kvMemory: byte counts and sizes with units", () => {
  const cases: [number | string, number][] = [
    [536870912, 536870912], ["536870912", 536870912], ["100b", 100], ["100 B", 100],
    ["64KiB", 64 * 1024], ["64KB", 64_000], ["64kb", 64_000],
    ["512MiB", 512 * MiB], ["512 mib", 512 * MiB], ["1MB", 1e6], ["1.5GiB", 1.5 * GiB], [".5GiB", GiB / 2], ["2GB", 2e9], ["2 gib", 2 * GiB],
    ["1.3KiB", Math.floor(1.3 * 1024)], ["  3MiB  ", 3 * MiB],
  ];
  for (const [value, bytes] of cases) assert.equal(parseKvMemory(value, 4 * GiB), bytes, String(value));
});

test("kvMemory: a fraction in (0, 1] of the available memory, floored; the default is a quarter, at most 1 GiB", () => {
  assert.equal(parseKvMemory("0.5", 1001), 500);
  assert.equal(parseKvMemory(0.25, 4000), 1000);
  assert.equal(parseKvMemory(".1", 1000), 100);
  assert.equal(parseKvMemory("1", 12345), 12345);
  assert.equal(parseKvMemory(1, 12345), 12345, "the number 1 is the whole, not one byte");
  assert.equal(parseKvMemory("1.0", 12345), 12345);
  assert.equal(parseKvMemory(undefined, 1001), 250);
  assert.equal(parseKvMemory(undefined, 8 * GiB), GiB);
});

test("kvMemory: bad strings, zero, and more than is available are refused, naming kvMemory", () => {
  const bad = (value: unknown) => `kvMemory must be bytes (e.g. 536870912, 512MiB, 2GB) or a fraction of free memory in (0, 1], got ${JSON.stringify(value)}`;
  for (const value of ["", "abc", "-1", "1e9", "5PiB", "12 MiBs", "0x10", "1,000", "MiB", "1..5", "NaN", -5]) refuses(() => parseKvMemory(value, GiB), bad(value));
  refuses(() => parseKvMemory("0", GiB), "kvMemory must be more than 0");
  refuses(() => parseKvMemory("1.5", GiB), "kvMemory 1.5: bytes are a whole number, a fraction of free memory is at most 1");
  refuses(() => parseKvMemory(2.5, GiB), "kvMemory 2.5: bytes are a whole number, a fraction of free memory is at most 1");
  refuses(() => parseKvMemory(0, GiB), "kvMemory must be more than 0");
  refuses(() => parseKvMemory("2GiB", GiB), "kvMemory 2GiB is more than the 1.00 GiB the backend can still allocate");
  refuses(() => parseKvMemory("3000000", 2 * MiB), "kvMemory 3000000 is more than the 2.0 MiB the backend can still allocate");
  assert.equal(parseKvMemory("1GiB", GiB), GiB, "exactly what is available is fine");
});

test("formatBytes", () => {
  assert.deepEqual([formatBytes(GiB), formatBytes(1.5 * MiB), formatBytes(1000)], ["1.00 GiB", "1.5 MiB", "1000 bytes"]);
});

/** 2 layers x 2 KV heads, head dim 8: a page is 2 * 16 * 8 * 4 = 1024 bytes in f32; at least 8 pages. */
const model = { numLayers: 2, numKvHeads: 2, headDim: 8, maxPositions: 2048 } as ModelConfig;
const resolve = (options: EngineOptions, available = MiB) => resolveEngineConfig(options, model, available, 256);

test("defaults: a quarter of available memory in f32 pages plus the null page, 1% watermark", () => {
  assert.deepEqual(resolve({}), {
    kvDType: "f32", numPages: 256 + 1, pageBytes: 1024, kvMemoryBytes: MiB / 4, maxBatchTokens: 512, maxSeqs: 16, maxLogitRows: 64,
    prefillChunk: 512, maxWindow: 2048, maxContext: 2048, watermarkPages: 3, observationWindow: 16, chainSteps: true,
  });
  const half = resolve({ kvDType: "bf16", kvMemory: "100KiB", maxSeqs: 100, maxWindow: 64, maxContext: 512, prefillChunk: 32, maxBatchTokens: 64 });
  assert.deepEqual([half.pageBytes, half.numPages, half.maxLogitRows, half.watermarkPages], [512, 200 + 1, 100, 2]);
  assert.deepEqual([half.maxWindow, half.maxContext, half.prefillChunk, half.maxBatchTokens], [64, 512, 32, 64]);
  // the largest window: 4096 by default (or the default window, if larger), never past the context
  const long = { ...model, maxPositions: 32768 } as ModelConfig;
  assert.equal(resolveEngineConfig({}, long, MiB, 256).maxWindow, 4096);
  assert.equal(resolveEngineConfig({}, long, MiB, 8192).maxWindow, 8192, "the default window raises the largest");
  assert.equal(resolveEngineConfig({ maxWindow: 1 << 20 }, long, MiB, 256).maxWindow, 32768, "a window past the context is the context");
});

test("every bad option is refused in one line naming it", () => {
  refuses(() => resolve({ kvDType: "f8" as never }), 'kvDType must be one of f32, f16, bf16, got "f8"');
  for (const name of ["maxBatchTokens", "maxSeqs", "prefillChunk", "maxWindow", "maxContext"] as const) {
    for (const bad of [0, -1, 1.5]) refuses(() => resolve({ [name]: bad }), `${name} must be a positive integer, got ${bad}`);
  }
  refuses(() => resolve({ maxContext: 4096 }), "maxContext 4096 exceeds max_position_embeddings 2048");
  refuses(() => resolve({ maxWindow: 100 }), "maxWindow must be a multiple of 16, got 100");
  refuses(() => resolve({ kvMemory: "7KiB" }), "kvMemory 7168 bytes holds 7 pages of 1024 bytes; this model needs at least 8 (one token in every layer and KV head)");
  refuses(() => resolve({ kvMemory: "lots" }), /^kvMemory must be bytes/);
  assert.equal(resolve({ kvMemory: "8KiB" }).numPages, 9);
});
