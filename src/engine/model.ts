/**
 * @module engine/model
 *
 * A loaded model: config, tokenizer, weights on a backend, and the forward
 * pass over a prompt. Platform-neutral: files come through a FileSource.
 */
import type { Backend } from "../backends/backend.js";
import { causeText, InvalidInputError, ModelLoadError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import { Transformer } from "../model/transformer.js";
import { KvCacheManager } from "../kv/kvCacheManager.js";
import { resolveKvSettings, type KvSettings } from "../kv/kvSettings.js";
import type { SequenceKv } from "../kv/sequenceKv.js";
import type { RopeFrequencyDType } from "../model/rope.js";
import { loadWeights, type LoadProgress } from "../model/weights.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";

export interface ModelLoadOptions {
  readonly onProgress?: LoadProgress;
  /** Precision of RoPE inverse frequencies (default f32, as transformers computes them). */
  readonly ropeFreqDType?: RopeFrequencyDType;
  /** Tokens per prefill chunk (default 512, at most the local window): bounds activation memory. */
  readonly prefillChunk?: number;
  /** Default KV cache behaviour (full attention, f32 pages, W = 256 unless given). */
  readonly kv?: Partial<KvSettings>;
}

export class Model {
  readonly prefillChunk: number;
  readonly kvSettings: KvSettings;
  readonly #kvManager: KvCacheManager;

  private constructor(
    readonly name: string,
    readonly config: ModelConfig,
    /** Null for weight-only folders (no tokenizer.json): such a model runs on token ids. */
    readonly tokenizer: TextTokenizer | null,
    readonly transformer: Transformer,
    /** End-of-sequence ids from config.json and generation_config.json. */
    readonly eosTokenIds: ReadonlySet<number>,
    options: ModelLoadOptions,
  ) {
    this.prefillChunk = options.prefillChunk ?? 512;
    this.kvSettings = resolveKvSettings(options.kv);
    this.#kvManager = new KvCacheManager(config, transformer.backend);
  }

  static async load(source: FileSource, backend: Backend, options: ModelLoadOptions = {}): Promise<Model> {
    if (!(await source.exists("config.json"))) throw new ModelLoadError(`${describeFile(source, "config.json")}: file is missing (is ${source.label} a model folder?)`);
    const config = parseModelConfig(await source.readText("config.json"), describeFile(source, "config.json"));
    const tokenizer = (await source.exists("tokenizer.json")) ? await loadTokenizer(source) : null;
    const eos = new Set(config.eosTokenIds);
    for (const id of await readGenerationEos(source)) eos.add(id);
    const weights = await loadWeights(source, config, backend, options.onProgress);
    const transformer = new Transformer(config, weights, backend, options.ropeFreqDType);
    return new Model(source.label, config, tokenizer, transformer, eos, options);
  }

  /** The tokenizer, or a one-line error for folders that have none. */
  requireTokenizer(): TextTokenizer {
    if (!this.tokenizer) throw new ModelLoadError(`${this.name}/tokenizer.json: file is missing; this model can only run on token ids`);
    return this.tokenizer;
  }

  get backend(): Backend {
    return this.transformer.backend;
  }

  /** Throws a one-line error unless every id is a valid token and the prompt fits the context. */
  validatePrompt(ids: readonly number[], maxNewTokens = 0): void {
    const { vocabSize, maxPositions } = this.config;
    if (ids.length === 0) throw new InvalidInputError("the prompt is empty");
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidInputError(`token id ${id} at index ${i} is out of range (vocab size ${vocabSize})`);
    });
    if (ids.length > maxPositions) throw new InvalidInputError(`prompt of ${ids.length} tokens exceeds max_position_embeddings ${maxPositions}`);
    if (ids.length + maxNewTokens > maxPositions) {
      throw new InvalidInputError(`prompt of ${ids.length} tokens + ${maxNewTokens} new tokens exceeds max_position_embeddings ${maxPositions}`);
    }
  }

  /**
   * A new sequence with room for `capacity` tokens; release() it when done.
   * `settings` override the model's KV settings for this sequence.
   */
  createSequence(capacity: number, settings?: Partial<KvSettings>): SequenceKv {
    const resolved = settings ? resolveKvSettings({ ...this.kvSettings, ...settings }) : this.kvSettings;
    return this.#kvManager.createSequence(Math.min(capacity, this.config.maxPositions), resolved);
  }

  /** The KV pools' invariants and free pages (tests). */
  checkKvInvariants(): ReturnType<KvCacheManager["checkInvariants"]> {
    return this.#kvManager.checkInvariants();
  }

  /**
   * Runs ids through the model in chunks, appending to `kv`. With `onLogits`,
   * logits of every position are passed on ([T, V] per chunk, first position
   * given); otherwise only the last position's logits [V] are returned.
   */
  async prefill(ids: readonly number[], kv: SequenceKv, onLogits?: (logits: Float32Array, firstPosition: number, numTokens: number) => void): Promise<Float32Array> {
    // NOTE: all-position logits need a [T, V] buffer; smaller chunks keep it modest.
    const chunk = Math.min(onLogits ? 64 : this.prefillChunk, kv.maxChunk);
    let last: Float32Array | null = null;
    for (let start = 0; start < ids.length; start += chunk) {
      const part = Int32Array.from(ids.slice(start, start + chunk));
      const first = kv.numTokens;
      const isLast = start + chunk >= ids.length;
      const logits = await this.transformer.forward(part, kv, onLogits ? "all" : isLast ? "last" : "none");
      if (onLogits && logits) {
        onLogits(logits, first, part.length);
        last = logits.slice((part.length - 1) * this.config.vocabSize);
      } else if (logits) last = logits;
    }
    return last!;
  }

  /** One decode step: appends `id` and returns next-token logits [V]. */
  async step(id: number, kv: SequenceKv): Promise<Float32Array> {
    return (await this.transformer.forward(Int32Array.of(id), kv, "last"))!;
  }

  dispose(): void {
    this.transformer.backend.dispose();
  }
}

async function readGenerationEos(source: FileSource): Promise<number[]> {
  if (!(await source.exists("generation_config.json"))) return [];
  try {
    const json = JSON.parse(await source.readText("generation_config.json")) as { eos_token_id?: unknown };
    const eos = json.eos_token_id;
    if (typeof eos === "number") return [eos];
    if (Array.isArray(eos)) return eos.filter((v): v is number => typeof v === "number");
    return [];
  } catch (err) {
    throw new ModelLoadError(`${describeFile(source, "generation_config.json")}: not valid JSON (${causeText(err)})`);
  }
}
