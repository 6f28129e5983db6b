/**
 * @module wgkv
 *
 * Node.js entry point: load a Hugging Face model folder and generate.
 *
 * ```ts
 * import { loadModel, generate } from "wgkv";
 * const model = await loadModel();                  // the embedded default model
 * const stream = generate(model, { messages: [{ role: "user", content: "Hi" }] }, { kv: { gate: "gate.pt" } });
 * for await (const chunk of stream) process.stdout.write(chunk.text);
 * console.log((await stream.result).kv);
 * model.dispose();
 * ```
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stat } from "node:fs/promises";
import { Model, type ModelLoadOptions } from "./engine/model.js";
import { GenerationStream, type GenerateOptions as CoreGenerateOptions } from "./engine/generation.js";
import { finishGeneration, generateWithGates } from "./engine/gateRefs.js";
import { promptToIds, type Prompt } from "./engine/prompt.js";
import { InvalidInputError, ModelLoadError } from "./errors.js";
import { checkCpuWeightBudget } from "./model/weightBudget.js";
import { createBackend, type BackendOptions } from "./platform/node/backend.js";
import { createFolderSource } from "./platform/node/fileSource.js";
import { randomWeightsSource } from "./model/randomWeights.js";
import { loadGateFile, type NodeKvOptions } from "./platform/node/gateFiles.js";

/** The model shipped inside the package. */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../models/wgkv-tiny-chat");

export interface LoadModelOptions extends ModelLoadOptions, BackendOptions {
  /** Read the folder's config with seeded random bf16 weights of its shapes, in place of any weights it has (benchmarks; model/randomWeights.ts). */
  readonly randomWeights?: number;
}

/** Loads a model folder (config.json, safetensors, tokenizer) onto a backend. */
export async function loadModel(dir: string = DEFAULT_MODEL_DIR, options: LoadModelOptions = {}): Promise<Model> {
  if (typeof dir !== "string" || dir.trim() === "") throw new InvalidInputError("loadModel: the model folder must be a non-empty path");
  Model.checkOptions(options);
  const info = await stat(dir).catch(() => null);
  if (!info) throw new ModelLoadError(`${dir}: model folder not found`);
  if (!info.isDirectory()) throw new ModelLoadError(`${dir}: not a folder (expected a Hugging Face model folder)`);
  const folder = createFolderSource(dir);
  const source = options.randomWeights !== undefined ? await randomWeightsSource(folder, options.randomWeights) : folder;
  // NOTE: the CPU backend's memory is one WebAssembly memory: too large a model is refused before a weight is read
  if (options.backend === undefined || options.backend.startsWith("cpu")) await checkCpuWeightBudget(source);
  const backend = await createBackend(options);
  if (options.backend === "auto" && backend.name.startsWith("cpu")) {
    try {
      await checkCpuWeightBudget(source);
    } catch (err) {
      backend.dispose();
      throw err;
    }
  }
  try {
    const { randomWeights: _, ...modelOptions } = options;
    return await Model.load(source, backend, modelOptions);
  } catch (err) {
    backend.dispose();
    throw err;
  }
}

/** generate()'s options as the Node entry takes them: `kv.gate` may be a gate file's path. */
export interface NodeGenerateOptions extends Omit<CoreGenerateOptions, "kv"> {
  readonly kv?: NodeKvOptions;
}

/** What generate() takes (the Node entry's: `kv.gate` may be a path). */
export type GenerateOptions = NodeGenerateOptions;

/**
 * Streams a generation: text, chat messages or token ids in; token and text
 * deltas out, then `result`. Bad options reject the stream with a one-line
 * WgkvError.
 */
export function generate(model: Model, prompt: Prompt, options: NodeGenerateOptions = {}): GenerationStream {
  return generateWithGates(model, prompt, options, loadGateFile);
}

/** Runs a generation to its end and returns its result (no streaming). */
export async function generateText(model: Model, prompt: Prompt, options: NodeGenerateOptions = {}) {
  return finishGeneration(generate(model, prompt, options));
}

export { Model, promptToIds, loadGateFile };
export { GenerationStream };
export type { Prompt };
export type { GenerationChunk, GenerationResult, SamplingOptions } from "./engine/generation.js";
export type { KvOptions, GateInput } from "./engine/kvOptions.js";
export type { NodeKvOptions } from "./platform/node/gateFiles.js";
export type { KvReport, EngineStats } from "./engine/engineStats.js";
export type { EngineOptions } from "./engine/engineConfig.js";
export type { FinishReason } from "./engine/sequence.js";
export type { BackendOptions, BackendName, SimdBuild } from "./platform/node/backend.js";
export type { ModelConfig, Architecture } from "./model/config.js";
export type { KvDType } from "./backends/backend.js";
export { WgkvError, ModelLoadError, ModelTooLargeError, UnsupportedModelError, InvalidInputError } from "./errors.js";
export { GateFormatError, GateShapeError, UnsafePickleError } from "./gate/errors.js";
export { OutOfPagesError, InvalidCacheConfigError } from "./kvcache/errors.js";
export { BackendUnavailableError } from "./platform/node/backend.js";
export { WebGpuUnavailableError } from "./backends/webgpu/webgpuErrors.js";
export type { ChatMessage } from "./tokenizer/tokenizer.js";
