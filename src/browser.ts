/**
 * @module wgkv/browser
 *
 * Browser entry point: load a Hugging Face model folder served over HTTP onto
 * the GPU through `navigator.gpu`, and generate. Bundled with its tokenizer
 * and template libraries into `dist/browser/wgkv.js` (an ES module;
 * scripts/build-browser.mjs); nothing here or below imports `node:*`.
 *
 * ```ts
 * import { loadModel, generate } from "wgkv/browser";
 * const model = await loadModel("/models/wgkv-tiny-chat/");    // config.json, safetensors, tokenizer.json under it
 * const stream = generate(model, { messages: [{ role: "user", content: "Hi" }] }, { kv: { gate: "/gates/gate.pt" } });
 * for await (const chunk of stream) output.textContent += chunk.text;
 * console.log((await stream.result).kv);
 * model.dispose();
 * ```
 */
import { Model, type ModelLoadOptions } from "./engine/model.js";
import { GenerationStream } from "./engine/generation.js";
import { finishGeneration, generateWithGates, type GateRefKvOptions, type GenerateRefOptions } from "./engine/gateRefs.js";
import { promptToIds, type Prompt } from "./engine/prompt.js";
import { InvalidInputError } from "./errors.js";
import { WebGpuUnavailableError } from "./backends/webgpu/webgpuErrors.js";
import { createHttpSource } from "./platform/browser/httpSource.js";
import { createBrowserWebGpuBackend } from "./platform/browser/webgpu.js";
import { loadGateUrl } from "./platform/browser/gateUrl.js";

export interface BrowserLoadModelOptions extends ModelLoadOptions {
  /** WebGPU features not to use where the adapter has them (to try the portable kernels). */
  readonly disableGpuFeatures?: readonly string[];
  /** Bytes the backend may allocate on the GPU (default: 4 x the adapter's storage binding limit). */
  readonly gpuMemoryBytes?: number;
  /** The fetch that reads the model's files (default: globalThis.fetch). */
  readonly fetch?: typeof fetch;
}

/**
 * Loads the model folder at `url` (resolved against the page) onto the GPU.
 * Failures are one-line WgkvErrors: a file's URL and HTTP status, or why
 * WebGPU is unavailable (WebGpuUnavailableError).
 */
export async function loadModel(url: string, options: BrowserLoadModelOptions = {}): Promise<Model> {
  if (typeof url !== "string" || url.trim() === "") throw new InvalidInputError("loadModel: the model URL must be a non-empty string");
  const { disableGpuFeatures, gpuMemoryBytes, fetch: fetchImpl, ...modelOptions } = options;
  Model.checkOptions(modelOptions);
  const source = createHttpSource(url, { fetch: fetchImpl });
  const backend = await createBrowserWebGpuBackend({ disableFeatures: disableGpuFeatures, memoryBytes: gpuMemoryBytes });
  try {
    return await Model.load(source, backend, modelOptions);
  } catch (err) {
    backend.dispose();
    throw err;
  }
}

/** KV options as the browser entry accepts them: the gate may be a URL. */
export type BrowserKvOptions = GateRefKvOptions;

/** generate()'s options as the browser entry takes them: `kv.gate` may be a gate file's URL. */
export type BrowserGenerateOptions = GenerateRefOptions;

const gateByUrl = (url: string, model: Model) => loadGateUrl(url, model);

/**
 * Streams a generation: text, chat messages or token ids in; token and text
 * deltas out, then `result` (timings and the KV report). Bad options reject
 * the stream with a one-line WgkvError.
 */
export function generate(model: Model, prompt: Prompt, options: BrowserGenerateOptions = {}): GenerationStream {
  return generateWithGates(model, prompt, options, gateByUrl);
}

/** Runs a generation to its end and returns its result (no streaming). */
export async function generateText(model: Model, prompt: Prompt, options: BrowserGenerateOptions = {}) {
  return finishGeneration(generate(model, prompt, options));
}

export { Model, GenerationStream, promptToIds, loadGateUrl, createHttpSource, WebGpuUnavailableError };
export type { Prompt, ModelLoadOptions };
export type { FileSource } from "./io/fileSource.js";
export type { GenerateOptions, GenerationChunk, GenerationResult, SamplingOptions } from "./engine/generation.js";
export type { KvOptions, GateInput } from "./engine/kvOptions.js";
export type { KvReport, EngineStats } from "./engine/engineStats.js";
export type { EngineOptions } from "./engine/engineConfig.js";
export type { FinishReason } from "./engine/sequence.js";
export type { ModelConfig, Architecture } from "./model/config.js";
export type { KvDType } from "./backends/backend.js";
export type { ChatMessage } from "./tokenizer/tokenizer.js";
export { WgkvError, ModelLoadError, ModelTooLargeError, UnsupportedModelError, InvalidInputError } from "./errors.js";
export { GateFormatError, GateShapeError, UnsafePickleError } from "./gate/errors.js";
export { OutOfPagesError, InvalidCacheConfigError } from "./kvcache/errors.js";
