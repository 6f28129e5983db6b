/**
 * Starting the CPU backend where the runtime cannot run the SIMD kernels, and
 * with Node flags a worker thread refuses: one warning line and the reference
 * kernels, a one-line error when a SIMD build was asked for by name, and
 * workers that start anyway.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { WasmKernelsUnsupportedError } from "../../backends/cpu/wasm/wasmModule.js";
import { PROJECT_ROOT } from "../../testing/fixtures.js";
import { BackendUnavailableError, createCpuBackend } from "./backend.js";

const unsupported = () => Promise.reject(new WasmKernelsUnsupportedError("this runtime cannot compile the kernels (WebAssembly SIMD and threads are required)"));

test("no SIMD: the reference kernels, with one warning line", async () => {
  const warnings: string[] = [];
  const backend = await createCpuBackend(unsupported, { onWarning: (m) => warnings.push(m) });
  try {
    assert.equal(backend.name, "cpu-reference");
    assert.deepEqual(warnings, ["this runtime cannot compile the kernels (WebAssembly SIMD and threads are required); running on the TypeScript reference kernels instead (much slower)"]);
  } finally {
    backend.dispose();
  }
});

test("no SIMD but --simd relaxed asked for: a one-line error", async () => {
  await assert.rejects(createCpuBackend(unsupported, { simd: "relaxed" }), (err: unknown) => err instanceof BackendUnavailableError && /^--simd relaxed: this runtime cannot compile/.test(err.message));
});

test("any other failure is not hidden", async () => {
  await assert.rejects(createCpuBackend(() => Promise.reject(new RangeError("boom"))), /boom/);
});

test("kernel workers start under Node flags a worker refuses (--max-old-space-size)", () => {
  const r = spawnSync(process.execPath, ["--max-old-space-size=2048", join(PROJECT_ROOT, "dist/cli.js"), "generate", "--max-tokens", "2", "--threads", "2", "hello"], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
});
