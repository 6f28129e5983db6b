/**
 * The training loop on a tiny random model: the gate learns. With a large
 * lambda the sparsity term falls and fewer tokens are admitted; with a tiny
 * lambda the distillation loss falls. Plus the loop's bookkeeping:
 * checkpoints when due, step reports, and a resumed run that ends where an
 * uninterrupted one does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randoms } from "../testing/trainReference.js";
import { randomHostModel, tinyConfig, uploadHostModel } from "../testing/trainModelReference.js";
import { createAdamWState } from "./adamw.js";
import { CpuTrainOps } from "./cpu/cpuTrainOps.js";
import { gateParamLayout, initGateParams } from "./gateParams.js";
import { LocalSampleRunner } from "./sampleRunner.js";
import { runTraining, type StepReport } from "./trainer.js";
import { createTrainKernels } from "./wasm/trainKernels.js";

async function setup(lambda: number) {
  const ops = new CpuTrainOps(await createTrainKernels({ variant: "baseline", maxBytes: 256 << 20 }));
  const c = tinyConfig("llama");
  const model = uploadHostModel(ops, c, randomHostModel(c, 5));
  const layout = gateParamLayout({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, hidden: 16 });
  const runner = new LocalSampleRunner(ops, model, layout, { window: 8, lambda, tau: 0.1 });
  const data = {
    sample(step: number, index: number) {
      const r = randoms(1000 * step + index);
      // samples at shifted positions too (the --position-range path)
      return { ids: Int32Array.from(r(48), (v) => Math.floor(((v + 1) / 2) * c.vocabSize)), positionOffset: (37 * step + index) % 200 };
    },
  };
  return { runner, data, layout };
}

async function train(lambda: number, steps: number, lr: number) {
  const { runner, data, layout } = await setup(lambda);
  const reports: StepReport[] = [];
  const params = initGateParams(layout, 1);
  await runTraining({ runner, data, params, adam: createAdamWState(layout.numParams), startStep: 0, settings: { steps, batch: 2, lr, warmup: 0.1, weightDecay: 0.01, lambda }, onStep: (r) => void reports.push(r) });
  return reports;
}

test("a large lambda drives the gate to admit fewer tokens", async () => {
  const r = await train(1, 30, 2e-2);
  assert.equal(r.length, 30);
  assert.ok(r[0]!.admitted > 0.9, `starts admitting nearly everything (${r[0]!.admitted})`);
  assert.ok(r.at(-1)!.sparsity < r[0]!.sparsity - 0.1, `sparsity ${r[0]!.sparsity} -> ${r.at(-1)!.sparsity}`);
  assert.ok(r.at(-1)!.admitted < r[0]!.admitted - 0.2, `admitted ${r[0]!.admitted} -> ${r.at(-1)!.admitted}`);
});

test("a tiny lambda lowers the distillation loss", async () => {
  const r = await train(1e-6, 30, 2e-2);
  const early = (r[0]!.mse + r[1]!.mse) / 2, late = (r.at(-1)!.mse + r.at(-2)!.mse) / 2;
  assert.ok(late < 0.7 * early, `distillation loss ${early} -> ${late}`);
});

test("checkpoints come when due and at the end; a resumed run ends where an uninterrupted one does", async () => {
  const { runner, data, layout } = await setup(0.3);
  const settings = { steps: 5, batch: 1, lr: 1e-2, warmup: 0.2, weightDecay: 0.01, lambda: 0.3 };
  const whole = initGateParams(layout, 2);
  const due: number[] = [];
  await runTraining({ runner, data, params: whole, adam: createAdamWState(layout.numParams), startStep: 0, settings, checkpointEvery: 2, onCheckpoint: (n) => void due.push(n) });
  assert.deepEqual(due, [2, 4, 5]);
  // the same run stopped after step 2 and resumed from its state
  const part = initGateParams(layout, 2), adam = createAdamWState(layout.numParams);
  const stop = (r: StepReport) => {
    if (r.step === 2) throw new StopAfter();
  };
  await assert.rejects(runTraining({ runner, data, params: part, adam, startStep: 0, settings, onStep: stop }), StopAfter);
  assert.equal(adam.step, 2);
  const steps: number[] = [];
  await runTraining({ runner, data, params: part, adam, startStep: 2, settings, onStep: (r) => void steps.push(r.step) });
  assert.deepEqual(steps, [3, 4, 5]);
  assert.deepEqual(part, whole);
});

class StopAfter extends Error {}
