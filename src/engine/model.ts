/**
 * @module engine/model
 *
 * A loaded model: config, tokenizer, weights on a backend, and the engine
 * that runs its requests (one page pool sized once from the KV memory
 * budget). Platform-neutral: files come through a FileSource.
 */
import type { Backend } from "../backends/backend.js";
import { causeText, InvalidInputError, ModelLoadError, WgkvError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { DEFAULT_WINDOW } from "../kvcache/kvPolicy.js";
import { parseModelConfig, readTokenIds, type ModelConfig } from "../model/config.js";
import type { ModelParts } from "../model/forward.js";
import { createRopeTable, type RopeFrequencyDType } from "../model/rope.js";
import { loadWeights, type LoadProgress } from "../model/weights.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { Engine } from "./engine.js";
import { resolveEngineConfig, type EngineOptions } from "./engineConfig.js";

export interface ModelLoadOptions extends EngineOptions {
  readonly onProgress?: LoadProgress;
  /** Precision of RoPE inverse frequencies (default f32, as transformers computes them). */
  readonly ropeFreqDType?: RopeFrequencyDType;
}

const LOAD_OPTIONS = new Set(["onProgress", "ropeFreqDType", "kvMemory", "kvDType", "maxBatchTokens", "maxSeqs", "prefillChunk", "maxWindow", "maxContext", "chainSteps"]);

export class Model {
  readonly engine: Engine;
  #disposed = false;

  private constructor(
    readonly name: string,
    readonly config: ModelConfig,
    /** Null for weight-only folders (no tokenizer.json): such a model runs on token ids. */
    readonly tokenizer: TextTokenizer | null,
    readonly parts: ModelParts,
    readonly backend: Backend,
    /** End-of-sequence ids from config.json and generation_config.json. */
    readonly eosTokenIds: ReadonlySet<number>,
    options: ModelLoadOptions,
  ) {
    const step = backend.preferredStepTokens;
    const sized = step ? { ...options, maxBatchTokens: options.maxBatchTokens ?? step, prefillChunk: options.prefillChunk ?? step } : options;
    this.engine = new Engine(backend, parts, resolveEngineConfig(sized, config, backend.availableBytes(), DEFAULT_WINDOW));
  }

  /** Checks load options that need no file, so a typo fails before the weights are read. */
  static checkOptions(options: ModelLoadOptions): void {
    if (typeof options !== "object" || options === null) throw new InvalidInputError(`model options must be an object, got ${JSON.stringify(options)}`);
    for (const key of Object.keys(options)) if (!LOAD_OPTIONS.has(key) && !["backend", "threads", "simd", "onWarning", "disableGpuFeatures", "randomWeights"].includes(key)) throw new InvalidInputError(`unknown model option "${key}"`);
    if (options.ropeFreqDType !== undefined && options.ropeFreqDType !== "f32" && options.ropeFreqDType !== "bf16") {
      throw new InvalidInputError(`ropeFreqDType must be "f32" or "bf16", got ${JSON.stringify(options.ropeFreqDType)}`);
    }
  }

  static async load(source: FileSource, backend: Backend, options: ModelLoadOptions = {}): Promise<Model> {
    Model.checkOptions(options);
    if (!(await source.exists("config.json"))) throw new ModelLoadError(`${describeFile(source, "config.json")}: file is missing (is ${source.label} a model folder?)`);
    const config = parseModelConfig(await source.readText("config.json"), describeFile(source, "config.json"));
    // engine settings are checked before the weights are read
    resolveEngineConfig({ ...options, kvMemory: options.kvMemory ?? 1 }, config, Number.MAX_SAFE_INTEGER, DEFAULT_WINDOW);
    const tokenizer = (await source.exists("tokenizer.json")) ? await loadTokenizer(source) : null;
    const eos = new Set(config.eosTokenIds);
    for (const id of await readGenerationEos(source, config.vocabSize)) eos.add(id);
    const weights = await loadWeights(source, config, backend, options.onProgress);
    const dims = { numLayers: config.numLayers, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim };
    const parts: ModelParts = { config, weights, rope: createRopeTable(config, options.ropeFreqDType), dims };
    return new Model(source.label, config, tokenizer, parts, backend, eos, options);
  }

  /** The tokenizer, or a one-line error for folders that have none. */
  requireTokenizer(): TextTokenizer {
    if (!this.tokenizer) throw new ModelLoadError(`${this.name}/tokenizer.json: file is missing; this model can only run on token ids`);
    return this.tokenizer;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Throws a one-line error after dispose(). */
  checkLive(): void {
    if (this.#disposed) throw new WgkvError(`the model ${this.name} was used after dispose()`);
  }

  /** Throws a one-line error unless every id is a valid token and the prompt fits the context. */
  validatePrompt(ids: readonly number[], maxNewTokens = 0): void {
    const { vocabSize } = this.config;
    const maxContext = this.engine.config.maxContext;
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw new InvalidInputError("the prompt must be a string, an array of token ids or { messages }");
    if (ids.length === 0) throw new InvalidInputError("the prompt is empty");
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidInputError(`token id ${id} at index ${i} is out of range (vocab size ${vocabSize})`);
    }
    if (ids.length > maxContext) throw new InvalidInputError(`prompt of ${ids.length} tokens exceeds the context of ${maxContext} tokens`);
    if (ids.length + maxNewTokens > maxContext) {
      throw new InvalidInputError(`prompt of ${ids.length} tokens + ${maxNewTokens} new tokens exceeds the context of ${maxContext} tokens`);
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.engine.dispose();
    this.backend.dispose();
  }
}

async function readGenerationEos(source: FileSource, vocabSize: number): Promise<number[]> {
  if (!(await source.exists("generation_config.json"))) return [];
  const where = describeFile(source, "generation_config.json");
  let json: unknown;
  try {
    json = JSON.parse(await source.readText("generation_config.json"));
  } catch (err) {
    throw new ModelLoadError(`${where}: not valid JSON (${causeText(err)})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ModelLoadError(`${where}: expected a JSON object`);
  return readTokenIds((json as { eos_token_id?: unknown }).eos_token_id, "eos_token_id", where, vocabSize);
}
