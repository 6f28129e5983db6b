/**
 * @module wgkv
 *
 * Node.js entry point: load a Hugging Face model folder and generate.
 *
 * ```ts
 * import { loadModel, generate } from "wgkv";
 * const model = await loadModel();                  // the embedded default model
 * for await (const chunk of generate(model, { messages: [{ role: "user", content: "Hi" }] })) {
 *   process.stdout.write(chunk.text);
 * }
 * model.dispose();
 * ```
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stat } from "node:fs/promises";
import { Model, type ModelLoadOptions } from "./engine/model.js";
import { generateFromIds, type GenerateOptions, type GenerationChunk, type GenerationResult } from "./engine/generate.js";
import { promptToIds, type Prompt } from "./engine/prompt.js";
import { ModelLoadError } from "./errors.js";
import { checkCpuWeightBudget } from "./model/weightBudget.js";
import { createBackend, type BackendOptions } from "./platform/node/backend.js";
import { createFolderSource } from "./platform/node/fileSource.js";

/** The model shipped inside the package. */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../models/wgkv-tiny-chat");

export interface LoadModelOptions extends ModelLoadOptions, BackendOptions {}

/** Loads a model folder (config.json, safetensors, tokenizer) onto a backend. */
export async function loadModel(dir: string = DEFAULT_MODEL_DIR, options: LoadModelOptions = {}): Promise<Model> {
  const info = await stat(dir).catch(() => null);
  if (!info) throw new ModelLoadError(`${dir}: model folder not found`);
  if (!info.isDirectory()) throw new ModelLoadError(`${dir}: not a folder (expected a Hugging Face model folder)`);
  const source = createFolderSource(dir);
  // NOTE: every backend today is a CPU backend: too large a model is refused before a weight is read.
  await checkCpuWeightBudget(source);
  const backend = await createBackend(options);
  try {
    return await Model.load(source, backend, options);
  } catch (err) {
    backend.dispose();
    throw err;
  }
}

/** Streams a generation: text, chat messages or token ids in; tokens and text deltas out. */
export function generate(model: Model, prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<GenerationChunk, GenerationResult> {
  return generateFromIds(model, promptToIds(model, prompt), options);
}

export { Model, promptToIds };
export type { Prompt, GenerateOptions, GenerationChunk, GenerationResult };
export { generateAll, generateFromIds } from "./engine/generate.js";
export type { ModelConfig, Architecture } from "./model/config.js";
export { WgkvError, ModelLoadError, ModelTooLargeError, UnsupportedModelError, InvalidInputError } from "./errors.js";
export type { ChatMessage } from "./tokenizer/tokenizer.js";
