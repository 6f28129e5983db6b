/**
 * The whole training pass of one sample against the f64 reference model:
 * teacher and student forwards, and the gate parameters' gradient (through
 * every layer's attention, the gates' key inputs and the sparsity term)
 * against finite differences of the reference loss, on tiny random Llama,
 * Qwen2 (biases) and Qwen3 (q/k norms) models.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkGradient, randoms } from "../testing/trainReference.js";
import { randomHostModel, refForward, refLoss, tinyConfig, uploadHostModel } from "../testing/trainModelReference.js";
import { CpuTrainOps } from "./cpu/cpuTrainOps.js";
import { gateParamLayout, initGateParams } from "./gateParams.js";
import { createSampleActivations, STAT_ADMITTED, STAT_MSE, STAT_SPARSITY } from "./sampleActivations.js";
import { backward, forward } from "./samplePass.js";
import { assertGrad, relL2, upload } from "./trainOps.conformance.js";
import { createTrainKernels } from "./wasm/trainKernels.js";

for (const arch of ["llama", "qwen2", "qwen3"] as const) {
  test(`sample pass (${arch}): teacher, student and the gate gradient match the f64 reference`, async () => {
    const ops = new CpuTrainOps(await createTrainKernels({ variant: "baseline", maxBytes: 256 << 20 }));
    const c = tinyConfig(arch);
    const host = randomHostModel(c, 1);
    const model = uploadHostModel(ops, c, host);
    const T = 40, W = 8, E = 12, lambda = 0.3;
    const rand = randoms(2);
    const ids = Array.from(rand(T), (v) => Math.floor(((v + 1) / 2) * c.vocabSize));
    const layout = gateParamLayout({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, hidden: E });
    // larger than the initial values, so g spans (0, 1) and some tokens sit at the floor of 1e-3
    const params = initGateParams(layout, 3).map((v, i) => v * 4 + rand(1)[0]! * 0.2 * (i % 2));
    const acts = createSampleActivations(ops, c, T, E, (inverse) => ops.ropeAngles(T, model.rope, inverse));

    forward(ops, model, acts, Int32Array.from(ids), null, W);
    const teacher = await ops.read(acts.scratch.y);
    assert.ok(relL2(teacher, refForward(c, host, ids, null).y) < 1e-5, "teacher final hidden state");
    // NOTE: the target is the teacher plus noise: student and teacher differ little, and the f32 teacher
    // is not the f64 reference's, so that gap alone would dominate a gradient this small
    const noisy = teacher.map((v) => v + rand(1)[0]! * 0.05);
    const target = upload(ops, noisy, "target");

    const gate = { layout, params: upload(ops, params, "params"), dParams: ops.alloc(layout.numParams, "dParams") };
    forward(ops, model, acts, Int32Array.from(ids), gate, W);
    const ref = refForward(c, host, ids, { layout, params, window: W });
    assert.ok(relL2(await ops.read(acts.scratch.y), ref.y) < 1e-5, "student final hidden state");
    const g0 = await ops.read(acts.layers[0]!.gate.g);
    assert.ok(relL2(g0, ref.g[0]!) < 1e-5, "layer 0 gate scores");
    assert.ok(Math.min(...g0) < 0.2 && Math.max(...g0) > 0.8, "gate scores spread over (0, 1)");

    backward(ops, model, acts, target, gate, { window: W, lambda, tau: 0.1 });
    const stats = await ops.read(acts.scratch.stats);
    const loss = stats[STAT_MSE]! + (lambda * stats[STAT_SPARSITY]!) / (c.numLayers * c.numKvHeads * T);
    const refLossValue = refLoss(c, host, ids, { layout, params, window: W }, noisy, lambda);
    assert.ok(Math.abs(loss - refLossValue) < 1e-5 * Math.abs(refLossValue), `loss ${loss} vs reference ${refLossValue}`);
    const admitted = ref.g.reduce((n, g) => n + g.filter((v) => v > Math.fround(0.1)).length, 0);
    assert.equal(stats[STAT_ADMITTED], admitted);

    const grad = await ops.read(gate.dParams);
    assert.ok(Math.min(...ref.g.flatMap((g) => [...g])) === 1e-3, "some tokens at the floor");
    const check = checkGradient((p) => refLoss(c, host, ids, { layout, params: p, window: W }, noisy, lambda), params, grad, { seed: 4, numDirections: 4, numCoords: 8 });
    assertGrad(`${arch} gate parameters (whole pass)`, check, 1e-3);
  });
}

test("shifting every position leaves the teacher's output alone and changes the gate's input", async () => {
  const ops = new CpuTrainOps(await createTrainKernels({ variant: "baseline", maxBytes: 256 << 20 }));
  const c = tinyConfig("qwen3");
  const model = uploadHostModel(ops, c, randomHostModel(c, 7));
  const T = 40, E = 12;
  const rand = randoms(8);
  const ids = Int32Array.from(rand(T), (v) => Math.floor(((v + 1) / 2) * c.vocabSize));
  const layout = gateParamLayout({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, hidden: E });
  const gate = { layout, params: upload(ops, initGateParams(layout, 9).map((v) => 4 * v)), dParams: ops.alloc(layout.numParams, "d") };
  const acts = createSampleActivations(ops, c, T, E, (inverse) => ops.ropeAngles(T, model.rope, inverse));
  const run = async (offset: number) => {
    ops.writeRopeAngles(acts.scratch.angles, T, model.rope, false, offset);
    forward(ops, model, acts, ids, null, 8);
    const teacher = await ops.read(acts.scratch.y);
    forward(ops, model, acts, ids, gate, 8);
    return { teacher, g: await ops.read(acts.layers[1]!.gate.g) };
  };
  const at0 = await run(0), at500 = await run(500);
  assert.ok(relL2(at500.teacher, at0.teacher) < 1e-5, `teacher moved by ${relL2(at500.teacher, at0.teacher)}`);
  assert.ok(relL2(at500.g, at0.g) > 1e-3, "the gate reads the key after RoPE, so its scores move");
});
