/**
 * @module platform/node/trainWorkerEntry
 *
 * Entry of a gate-training worker (started by trainWorkers.ts): loads the
 * model onto a CPU training device of its own, reports ready, then runs the
 * samples it is sent and replies with their summed gradient and loss terms.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CpuTrainOps } from "../../train/cpu/cpuTrainOps.js";
import { gateParamLayout } from "../../train/gateParams.js";
import { LocalSampleRunner } from "../../train/sampleRunner.js";
import { loadTrainModel } from "../../train/trainModel.js";
import { createTrainKernels } from "../../train/wasm/trainKernels.js";
import { causeText, isUserError } from "../../errors.js";
import { trainModelSource } from "./trainModelSource.js";
import type { TrainWorkerInit, TrainWorkerReply, TrainWorkerRequest } from "./trainWorkers.js";

const init = workerData as TrainWorkerInit;
const port = parentPort!;
let runner: LocalSampleRunner;
try {
  const ops = new CpuTrainOps(await createTrainKernels({ variant: init.variant }));
  const model = await loadTrainModel(await trainModelSource(init), ops, init.ropeFreq);
  runner = new LocalSampleRunner(ops, model, gateParamLayout(init.gate), init.settings);
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ error: causeText(err), user: isUserError(err) });
  process.exit(1);
}

// NOTE: requests are served one at a time, in order: each needs the whole device.
let queue = Promise.resolve();
port.on("message", (req: TrainWorkerRequest) => {
  queue = queue.then(async () => {
    let reply: TrainWorkerReply;
    try {
      if (req.type === "batch") {
        const { grad, stats } = await runner.runBatch(req.params, req.batch, req.scale);
        reply = { id: req.id, grad, stats };
        port.postMessage(reply, [grad.buffer as ArrayBuffer]);
        return;
      }
      reply = { id: req.id, scores: await runner.gateScores(req.params, req.samples) };
    } catch (err) {
      reply = { id: req.id, error: causeText(err), user: isUserError(err) };
    }
    port.postMessage(reply);
  });
});
