/**
 * Models too large for the CPU backend are refused from their safetensors
 * headers, before any weight is read: fake model folders whose headers
 * declare gigabytes of tensors over sparse files of (almost) no disk space.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelTooLargeError } from "../errors.js";
import { loadModel } from "../index.js";
import { archDir, DEFAULT_MODEL_DIR, PROJECT_ROOT } from "../testing/fixtures.js";
import { createFolderSource } from "../platform/node/fileSource.js";
import { readSafetensorsIndex, type TensorEntry } from "./safetensors.js";
import { checkCpuWeightBudget, cpuWeightBytes } from "./weightBudget.js";

const GiB = 2 ** 30;
let tmp = "";
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-budget-test-"));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A model folder (the qwen2 fixture's config) whose one safetensors file declares `tensors`; the data is a hole. */
function fakeModel(name: string, tensors: Record<string, { dtype: string; shape: number[] }>): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  copyFileSync(join(archDir("qwen2"), "config.json"), join(dir, "config.json"));
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [tensor, { dtype, shape }] of Object.entries(tensors)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : 2);
    header[tensor] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const file = join(dir, "model.safetensors");
  writeFileSync(file, Buffer.concat([length, json]));
  truncateSync(file, 8 + json.length + offset); // sparse: the declared data takes no disk
  return dir;
}

const entry = (name: string, dtype: TensorEntry["dtype"], shape: number[]): TensorEntry => ({
  name, file: "model.safetensors", dtype, shape, offset: 0, byteLength: shape.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : 2),
});

test("bf16 matrices are held as bf16, vectors and f16 as f32; a tied lm_head is not held", () => {
  const entries = [entry("m", "BF16", [1024, 1024]), entry("v", "BF16", [1024]), entry("h", "F16", [1024, 1024]), entry("f", "F32", [1024]), entry("lm_head.weight", "BF16", [4096, 1024])];
  assert.deepEqual(cpuWeightBytes(entries, true), { totalBytes: 2 * 2 ** 20 + 4096 + 4 * 2 ** 20 + 4096, largest: { name: "h", bytes: 4 * 2 ** 20 } });
  assert.equal(cpuWeightBytes(entries, false).totalBytes, 2 * 2 ** 20 + 4096 + 4 * 2 ** 20 + 4096 + 8 * 2 ** 20);
});

test("the default model and the fixtures pass", async () => {
  for (const dir of [DEFAULT_MODEL_DIR, archDir("qwen3")]) await checkCpuWeightBudget(createFolderSource(dir));
  const { totalBytes } = cpuWeightBytes((await readSafetensorsIndex(createFolderSource(DEFAULT_MODEL_DIR))).values(), true);
  assert.ok(totalBytes > 20 * 2 ** 20 && totalBytes < 64 * 2 ** 20, `${totalBytes}`);
});

test("weights over the 4 GiB memory are refused by loadModel, naming the folder, the size, the limit and --backend webgpu", async () => {
  // 3 x 1.25 GiB of bf16 matrices: 3.75 GiB, over 4 GiB with the 0.5 GiB margin.
  const shape = [40960, 16384];
  const dir = fakeModel("too-large", { a: { dtype: "BF16", shape }, b: { dtype: "BF16", shape }, c: { dtype: "BF16", shape } });
  const started = performance.now();
  await assert.rejects(loadModel(dir, { backend: "cpu" }), (err: Error) => {
    assert.ok(err instanceof ModelTooLargeError, String(err));
    assert.equal(err.message, `${dir}: the weights take 3.8 GiB on the CPU backend (bf16 matrices as bf16, the rest as f32), plus 0.5 GiB to run, over its 4 GiB limit (one WebAssembly memory); try --backend webgpu or a smaller model`);
    return true;
  });
  assert.ok(performance.now() - started < 2000, "refused from the headers, without reading weights");
});

test("f16 weights count as the f32 they become", async () => {
  // 1.875 GiB of f16 in the file is 3.75 GiB held; the same in bf16 stays 1.875 GiB and fits.
  const shape = [15360, 32768];
  const dir = fakeModel("f16", { a: { dtype: "F16", shape }, b: { dtype: "F16", shape } });
  await assert.rejects(checkCpuWeightBudget(createFolderSource(dir)), /: the weights take 3\.8 GiB on the CPU backend/);
  const fits = fakeModel("bf16", { a: { dtype: "BF16", shape }, b: { dtype: "BF16", shape } });
  await checkCpuWeightBudget(createFolderSource(fits));
});

test("one tensor of 2 GiB or more is refused even when the total would fit", async () => {
  const dir = fakeModel("big-tensor", { "model.embed_tokens.weight": { dtype: "BF16", shape: [65536, 16384] } });
  await assert.rejects(checkCpuWeightBudget(createFolderSource(dir)), {
    message: `${dir}: tensor "model.embed_tokens.weight" takes 2 GiB, and the CPU backend takes tensors under 2 GiB; try --backend webgpu or a smaller model`,
  });
});

test("the CLI prints the one line fast and exits 1", () => {
  const gib = { dtype: "F32", shape: [GiB / 16, 4] }; // 1 GiB each
  const dir = fakeModel("cli", { a: gib, b: gib, c: gib, d: gib, e: gib });
  const started = performance.now();
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist/cli.js"), "forward", "--model", dir, "--ids", "1", "--json"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `wgkv: error: ${dir}: the weights take 5 GiB on the CPU backend (bf16 matrices as bf16, the rest as f32), plus 0.5 GiB to run, over its 4 GiB limit (one WebAssembly memory); try --backend webgpu or a smaller model\n`);
  assert.ok(performance.now() - started < 10_000);
});
