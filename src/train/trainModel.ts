/**
 * @module train/trainModel
 *
 * The frozen backbone on a {@link TrainOps} device: the model's weights read
 * by model/weights.ts (names and shapes checked against config.json), matrices
 * as {@link TMatrix} (forward and input gradient), norm weights and biases as
 * f32 buffers, and the RoPE table. Platform-neutral: files come through a FileSource.
 */
import type { RopeTable, WeightData } from "../backends/backend.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import { createRopeTable, type RopeFrequencyDType } from "../model/rope.js";
import { loadWeights, type ModelWeights } from "../model/weights.js";
import { decodeFloats } from "../util/floats.js";
import type { TBuf, TMatrix, TrainOps } from "./trainOps.js";

/** A loaded tensor: matrices stay matrices, vectors become buffers. */
export type TrainWeight = TMatrix | TBuf;

export interface TrainModel {
  readonly config: ModelConfig;
  readonly weights: ModelWeights<TrainWeight>;
  readonly rope: RopeTable;
}

/** Reads config.json and the weights of a model folder onto `ops`. */
export async function loadTrainModel(source: FileSource, ops: TrainOps, ropeFreqDType: RopeFrequencyDType = "f32"): Promise<TrainModel> {
  const config = parseModelConfig(await source.readText("config.json"), describeFile(source, "config.json"));
  const weights = await loadWeights<TrainWeight>(source, config, {
    uploadWeight(data: WeightData, kind) {
      if (kind === "matrix") return ops.uploadMatrix(data, `[${data.shape}]`);
      const values = decodeFloats(data.bytes, 0, data.bytes.length / (data.dtype === "F32" ? 4 : 2), data.dtype === "F32" ? "f32" : data.dtype === "F16" ? "f16" : "bf16");
      const b = ops.alloc(values.length, `[${data.shape}]`);
      ops.write(b, values);
      return b;
    },
  });
  return { config, weights, rope: createRopeTable(config, ropeFreqDType) };
}

/** A matrix of the model (a name for errors if the loader gave a vector). */
export function matrix(w: TrainWeight): TMatrix {
  if (!("rows" in w)) throw new TypeError(`expected a matrix, got the vector ${w.label}`);
  return w;
}

/** A vector of the model, or null. */
export function vector(w: TrainWeight | null): TBuf | null {
  if (w !== null && "rows" in w) throw new TypeError(`expected a vector, got the matrix ${w.label}`);
  return w;
}

/** A short identity of the architecture, recorded in gate files and checked on --resume. */
export function modelSignature(config: ModelConfig): string {
  const c = config;
  return `${c.architecture} L${c.numLayers} H${c.hiddenSize} I${c.intermediateSize} heads${c.numHeads}/${c.numKvHeads} d${c.headDim} V${c.vocabSize}`;
}
