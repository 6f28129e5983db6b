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
import { InvalidInputError } from "../../errors.js";
import { BackendUnavailableError, createBackend, createCpuBackend } from "./backend.js";
import { mayHaveHardwareGpu } from "./webgpu.js";

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

test("auto on a machine with no GPU device: the CPU backend, without starting Dawn (nothing on stderr)", { skip: mayHaveHardwareGpu() && "this machine may have a GPU" }, () => {
  const script = `import { createBackend } from ${JSON.stringify(join(PROJECT_ROOT, "dist/platform/node/backend.js"))};
    const b = await createBackend({ backend: "auto", threads: 1 }); process.stdout.write(b.name); b.dispose();`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual([r.stdout, r.stderr], ["cpu", ""]);
});

test("webgpu on a software renderer runs, with one warning line saying so", async () => {
  const warnings: string[] = [];
  let backend;
  try {
    backend = await createBackend({ backend: "webgpu", onWarning: (m) => warnings.push(m) });
  } catch (err) {
    assert.ok(err instanceof BackendUnavailableError && /^backend webgpu: /.test(err.message), String(err));
    return; // no WebGPU adapter at all on this machine
  }
  try {
    if (!("software" in backend) || !backend.software) return assert.deepEqual(warnings, []);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^backend webgpu runs on a software renderer \(.+\): no GPU was found, and it is far slower than the cpu backend$/);
  } finally {
    backend.dispose();
  }
});

test("threads and simd are checked with one line naming the option", async () => {
  await assert.rejects(createBackend({ backend: "cpu", threads: 0 }), (e: unknown) => e instanceof InvalidInputError && e.message === "threads must be a positive integer, got 0");
  await assert.rejects(createBackend({ backend: "cpu", simd: "sse" as never }), (e: unknown) => e instanceof InvalidInputError && e.message === 'simd must be one of auto, relaxed, baseline, got "sse"');
});
