/**
 * @module platform/node/trainModelSource
 *
 * Where a gate trainer (the main thread's or a worker's) reads the frozen
 * model from: the model folder, or with `randomWeights` seeded random bf16
 * weights of its config (model/randomWeights.ts), for timing runs on shapes
 * whose weights are not at hand.
 */
import type { FileSource } from "../../io/fileSource.js";
import { randomWeightsSource } from "../../model/randomWeights.js";
import { createFolderSource } from "./fileSource.js";
import type { TrainWorkerInit } from "./trainWorkers.js";

export async function trainModelSource(init: Pick<TrainWorkerInit, "modelDir" | "randomWeights">): Promise<FileSource> {
  const folder = createFolderSource(init.modelDir);
  return init.randomWeights === undefined ? folder : randomWeightsSource(folder, init.randomWeights);
}
