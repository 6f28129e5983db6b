/**
 * `wgkv train-gate --backend webgpu` end to end on the embedded model (in CI:
 * lavapipe, so the shapes are tiny): two steps whose loss terms are finite
 * and agree with the CPU backend's run of the same samples, and a gate file
 * the gate reader loads. Skipped, with the reason, where no WebGPU adapter
 * is found. Plus the one-line error for an unknown --backend.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadGate } from "../gate/gateFile.js";
import { createNodeWebGpuDevice, WebGpuUnavailableError } from "../platform/node/webgpu.js";
import { expectCliError, runCli } from "../testing/cli.js";

let tmp = "";
before(() => (tmp = mkdtempSync(join(tmpdir(), "wgkv-train-gpu-cli-"))));
after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

let skip: string | false = false;
try {
  const d = await createNodeWebGpuDevice();
  d.device.destroy();
  d.release();
} catch (err) {
  if (!(err instanceof WebGpuUnavailableError)) throw err;
  skip = `no WebGPU device: ${err.message}`;
}

const TINY = ["--lambda", "0.1", "--steps", "2", "--length", "64", "--window", "16", "--batch", "1", "--threads", "1", "--report-samples", "1", "--needle-mix", "0.5"];
const MODEL_SHAPE = { numLayers: 8, numKvHeads: 2, headDim: 64 };

/** Each step's loss, distillation and sparsity terms from the progress lines. */
function stepTerms(stderr: string): number[][] {
  return [...stderr.matchAll(/^step \d+\/\d+ {2}loss (\S+) {2}distill (\S+) {2}sparsity (\S+) /gm)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

test("train-gate --backend webgpu trains, writes a loadable gate, and matches the CPU backend's losses", { skip }, () => {
  const out = join(tmp, "gpu.safetensors");
  const gpu = runCli(["train-gate", ...TINY, "--backend", "webgpu", "--out", out]);
  assert.equal(gpu.status, 0, gpu.stderr);
  assert.match(gpu.stderr, /; webgpu \(.*\), samples one after another\n/);
  const terms = stepTerms(gpu.stderr);
  assert.equal(terms.length, 2, gpu.stderr);
  assert.ok(terms.flat().every(Number.isFinite), gpu.stderr);
  const { meta } = loadGate(new Uint8Array(readFileSync(out)), out, MODEL_SHAPE);
  assert.equal(meta.window, 16);

  const cpu = runCli(["train-gate", ...TINY, "--backend", "cpu", "--out", join(tmp, "cpu.safetensors")]);
  assert.equal(cpu.status, 0, cpu.stderr);
  // the same samples and initial gate: f32 sums in another order differ far below the printed digits
  const want = stepTerms(cpu.stderr);
  terms.forEach((step, s) => step.forEach((v, i) => assert.ok(Math.abs(v - want[s]![i]!) <= 2e-5 + 1e-3 * Math.abs(want[s]![i]!), `step ${s + 1}: ${step} vs cpu ${want[s]}`)));
});

test("train-gate refuses an unknown --backend with one line", () => {
  expectCliError(["train-gate", "--lambda", "0.1", "--backend", "tpu", "--out", join(tmp, "never.safetensors")], ['--backend must be one of cpu, webgpu, auto, got "tpu"']);
});
