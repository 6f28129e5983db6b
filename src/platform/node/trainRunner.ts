/**
 * @module platform/node/trainRunner
 *
 * Where `wgkv train-gate` runs its samples (docs/design.md §8): "cpu", worker
 * threads each with a CPU training device (trainWorkers.ts); "webgpu", the
 * one GPU device, samples one after another in this thread (a sample's ops
 * fill the device, so running several at once would gain nothing);
 * "auto", a real GPU when one is found, else "cpu".
 */
import { InvalidInputError } from "../../errors.js";
import { LocalSampleRunner, type SampleRunner } from "../../train/sampleRunner.js";
import { gateParamLayout } from "../../train/gateParams.js";
import { loadTrainModel } from "../../train/trainModel.js";
import { BackendUnavailableError } from "./backend.js";
import { trainModelSource } from "./trainModelSource.js";
import { WorkerSampleRunner, type TrainWorkerInit } from "./trainWorkers.js";

export type TrainBackendName = "cpu" | "webgpu" | "auto";
export const TRAIN_BACKENDS: readonly TrainBackendName[] = ["cpu", "webgpu", "auto"];

export function parseTrainBackend(text: string): TrainBackendName {
  if (!(TRAIN_BACKENDS as readonly string[]).includes(text)) throw new InvalidInputError(`--backend must be one of ${TRAIN_BACKENDS.join(", ")}, got "${text}"`);
  return text as TrainBackendName;
}

/** Starts the runner of `backend`; `numWorkers` is the CPU's worker threads. */
export async function startTrainRunner(backend: TrainBackendName, init: TrainWorkerInit, numWorkers: number): Promise<SampleRunner> {
  if (backend !== "cpu") {
    const { createNodeWebGpuTrainOps } = await import("./webgpuTrainOps.js");
    const { WebGpuUnavailableError } = await import("./webgpu.js");
    try {
      const ops = await createNodeWebGpuTrainOps({ requireHardware: backend === "auto" });
      try {
        const model = await loadTrainModel(await trainModelSource(init), ops, init.ropeFreq);
        const local = new LocalSampleRunner(ops, model, gateParamLayout(init.gate), init.settings);
        return {
          description: local.description,
          runBatch: (params, batch, scale) => local.runBatch(params, batch, scale),
          gateScores: (params, samples) => local.gateScores(params, samples),
          dispose() {
            local.dispose();
            ops.dispose();
          },
        };
      } catch (err) {
        ops.dispose();
        throw err;
      }
    } catch (err) {
      if (!(err instanceof WebGpuUnavailableError)) throw err;
      if (backend === "webgpu") throw new BackendUnavailableError(`--backend webgpu: ${err.message}`);
    }
  }
  return WorkerSampleRunner.start(init, numWorkers);
}
