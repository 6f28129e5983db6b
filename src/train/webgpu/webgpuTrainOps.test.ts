/**
 * The gate trainer's op suite (train/trainOps.conformance.ts) on WebGPU (in
 * CI: lavapipe), then what the suite does not reach: ops whose output is
 * also an input (in place), shapes past one 64 x 64 matmul tile and one
 * 64-key chunk, and one whole sample's pass (teacher, student, gate
 * gradient) against the CPU trainer's on a tiny random model. Skipped, with
 * the reason, where no WebGPU adapter is found.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createNodeWebGpuTrainOps } from "../../platform/node/webgpuTrainOps.js";
import { WebGpuUnavailableError } from "../../platform/node/webgpu.js";
import { randoms, refMatmul, refRmsNorm, refSiluMul } from "../../testing/trainReference.js";
import { randomHostModel, tinyConfig, uploadHostModel } from "../../testing/trainModelReference.js";
import { CpuTrainOps } from "../cpu/cpuTrainOps.js";
import { gateParamLayout, initGateParams } from "../gateParams.js";
import { createSampleActivations } from "../sampleActivations.js";
import { backward, forward } from "../samplePass.js";
import { FORWARD_TOL, relL2, roundBf16, trainOpsSuite, upload, weightData } from "../trainOps.conformance.js";
import type { TrainOps } from "../trainOps.js";
import { createTrainKernels } from "../wasm/trainKernels.js";
import type { WebGpuTrainOps } from "./webgpuTrainOps.js";

let ops: WebGpuTrainOps | null = null;
let skip: string | false = false;
try {
  ops = await createNodeWebGpuTrainOps();
} catch (err) {
  if (!(err instanceof WebGpuUnavailableError)) throw err;
  skip = `no WebGPU device: ${err.message}`;
}
after(() => ops?.dispose());

if (skip) {
  test("webgpu train ops", { skip }, () => {});
} else {
  trainOpsSuite("webgpu train ops", async () => ops!);

  test("webgpu train ops: in place (rmsNorm, siluMul, mse's dy = y) and shapes past one tile", async () => {
    const o = ops!;
    const rand = randoms(40);
    const rows = 70, dim = 80, N = 130;
    const x = rand(rows * dim, 2), w = rand(dim, 1.5);
    const xb = upload(o, x);
    o.rmsNorm(xb, xb, upload(o, w), rows, dim, 1e-6);
    const normed = refRmsNorm(x, w, rows, dim, 1e-6);
    assert.ok(relL2(await o.read(xb), normed) < FORWARD_TOL, "rmsNorm in place");
    const g = rand(rows * dim, 3), u = rand(rows * dim);
    const gb = upload(o, g);
    o.siluMul(gb, gb, upload(o, u), rows * dim);
    assert.ok(relL2(await o.read(gb), refSiluMul(g, u)) < FORWARD_TOL, "siluMul in place");
    const t = rand(rows * dim), stats = o.alloc(1, "stats"), yb = upload(o, x);
    o.mse(yb, yb, upload(o, t), rows * dim, 1, stats, 0);
    const want = Array.from(x, (v, i) => (2 * (v - t[i]!)) / (rows * dim));
    assert.ok(relL2(await o.read(yb), want) < FORWARD_TOL, "mse with dy = y");
    for (const dtype of ["F32", "BF16"] as const) {
      const wm = dtype === "BF16" ? roundBf16(rand(N * dim)) : rand(N * dim);
      const m = o.uploadMatrix(weightData(wm, [N, dim], dtype), "w");
      const out = o.alloc(rows * N, "out");
      o.matmul(out, xb, m, null, rows);
      assert.ok(relL2(await o.read(out), refMatmul(await o.read(xb), wm, null, rows, N, dim)) < FORWARD_TOL, `matmul ${dtype} ${rows}x${dim}x${N}`);
    }
  });

  test("webgpu train ops: a sample's pass (teacher, student, gate gradient) matches the CPU trainer's", async () => {
    const cpu = new CpuTrainOps(await createTrainKernels({ variant: "baseline", maxBytes: 256 << 20 }));
    const c = tinyConfig("qwen3");
    const host = randomHostModel(c, 7);
    const T = 80, W = 16, E = 12;
    const rand = randoms(8);
    const ids = Int32Array.from(rand(T), (v) => Math.floor(((v + 1) / 2) * c.vocabSize));
    const layout = gateParamLayout({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, hidden: E });
    const params = initGateParams(layout, 3).map((v) => v * 4);
    const run = async (dev: TrainOps) => {
      const model = uploadHostModel(dev, c, host);
      const acts = createSampleActivations(dev, c, T, E, (inverse) => dev.ropeAngles(T, model.rope, inverse));
      forward(dev, model, acts, ids, null, W);
      const teacher = await dev.read(acts.scratch.y);
      const target = upload(dev, teacher.map((v, i) => v + Math.sin(i) * 0.05), "target");
      const gate = { layout, params: upload(dev, params, "params"), dParams: dev.alloc(layout.numParams, "dParams") };
      forward(dev, model, acts, ids, gate, W);
      const student = await dev.read(acts.scratch.y);
      backward(dev, model, acts, target, gate, { window: W, lambda: 0.3, tau: 0.1 });
      return { teacher, student, stats: await dev.read(acts.scratch.stats), grad: await dev.read(gate.dParams) };
    };
    const want = await run(cpu), got = await run(ops!);
    assert.ok(relL2(got.teacher, want.teacher) < 1e-5, `teacher ${relL2(got.teacher, want.teacher)}`);
    assert.ok(relL2(got.student, want.student) < 1e-5, "student");
    assert.ok(relL2(got.stats.subarray(0, 3), want.stats.subarray(0, 3)) < 1e-5, `stats ${got.stats} vs ${want.stats}`);
    const gradErr = relL2(got.grad, want.grad);
    assert.ok(gradErr < 1e-4, `gate gradient relative L2 ${gradErr}`);
  });
}
