/**
 * @module model/config
 *
 * Parses a Hugging Face `config.json` (transformers 4.x or 5.x style) into one
 * validated, readonly ModelConfig. Everything downstream trusts these fields.
 */
import { causeText, ModelLoadError, UnsupportedModelError } from "../errors.js";

export type Architecture = "llama" | "mistral" | "qwen2" | "qwen3";

/** RoPE frequency scaling as configured by `rope_scaling` / `rope_parameters`. */
export type RopeScaling =
  | { readonly type: "default" }
  | { readonly type: "linear"; readonly factor: number }
  | {
      readonly type: "llama3";
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  readonly maxPositions: number;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2; Llama or Qwen3 with attention_bias). */
  readonly attentionBias: boolean;
  /** o_proj carries a bias (Llama or Qwen3 with attention_bias). */
  readonly outputBias: boolean;
  /** gate/up/down carry biases (Llama with mlp_bias). */
  readonly mlpBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  readonly qkNorm: boolean;
  /**
   * The span every layer attends within (key j visible from query i iff i - j < span), if shorter than the
   * context (Mistral v0.1: 4096); null for full attention. The engine runs such a model with local admission.
   */
  readonly slidingWindow: number | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** Storage dtype the checkpoint declares (informative only). */
  readonly dtype: string | null;
}

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
};
const MODEL_TYPES: Record<string, Architecture> = { llama: "llama", mistral: "mistral", qwen2: "qwen2", qwen3: "qwen3" };

/** Names of the supported architectures, for error messages. */
export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES);

type Json = Record<string, unknown>;

/** Parses config.json text; `file` names it in errors. */
export function parseModelConfig(text: string, file: string): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${file}: not valid JSON (${causeText(err)})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ModelLoadError(`${file}: expected a JSON object`);
  }
  return configFromJson(raw as Json, file);
}

function configFromJson(json: Json, file: string): ModelConfig {
  const architecture = detectArchitecture(json, file);
  const int = (key: string, fallback?: number) => readInt(json, key, file, fallback);
  const hiddenSize = int("hidden_size");
  const numHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numHeads);
  const headDim = json.head_dim == null ? hiddenSize / numHeads : int("head_dim");
  if (!Number.isInteger(headDim)) throw new ModelLoadError(`${file}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(`${file}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (headDim % 2 !== 0) throw new ModelLoadError(`${file}: head_dim ${headDim} must be even for RoPE`);
  const act = json.hidden_act ?? "silu";
  // NOTE: transformers' ACT2FN maps "swish" to the same SiLU
  if (act !== "silu" && act !== "swish") throw new UnsupportedModelError(`${file}: hidden_act "${String(act)}" is not supported (only silu)`);
  refuseQuantized(json, file);
  const rope = readRope(json, file);
  const numLayers = int("num_hidden_layers");
  if (numLayers > MAX_LAYERS) throw new ModelLoadError(`${file}: field "num_hidden_layers" is ${numLayers}, more than the ${MAX_LAYERS} layers of any model`);
  const maxPositions = readMaxPositions(json, file);
  // transformers hard-codes each architecture's biases: Qwen2 q/k/v always; Llama and Qwen3 q/k/v/o by
  // attention_bias; only Llama reads mlp_bias; Mistral none (it ignores both fields)
  const attentionBias = architecture === "qwen2" || ((architecture === "llama" || architecture === "qwen3") && json.attention_bias === true);
  const vocabSize = int("vocab_size");
  return Object.freeze({
    architecture,
    vocabSize,
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: readPositive(json, "rms_norm_eps", file, 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositions,
    tieWordEmbeddings: readFlag(json, "tie_word_embeddings", file),
    attentionBias,
    outputBias: attentionBias && architecture !== "qwen2",
    mlpBias: architecture === "llama" && json.mlp_bias === true,
    qkNorm: architecture === "qwen3",
    slidingWindow: readSlidingWindow(json, architecture, numLayers, maxPositions, file),
    bosTokenId: json.bos_token_id == null ? null : readTokenIds(json.bos_token_id, "bos_token_id", file, vocabSize)[0] ?? null,
    eosTokenIds: readTokenIds(json.eos_token_id, "eos_token_id", file, vocabSize),
    dtype: typeof json.dtype === "string" ? json.dtype : typeof json.torch_dtype === "string" ? json.torch_dtype : null,
  });
}

function detectArchitecture(json: Json, file: string): Architecture {
  const archs = Array.isArray(json.architectures) ? (json.architectures as unknown[]) : [];
  for (const a of archs) if (typeof a === "string" && ARCHITECTURES[a]) return ARCHITECTURES[a];
  if (archs.length === 0 && typeof json.model_type === "string" && MODEL_TYPES[json.model_type]) return MODEL_TYPES[json.model_type];
  const named = archs.length ? archs.join(", ") : typeof json.model_type === "string" ? json.model_type : "none given";
  throw new UnsupportedModelError(`${file}: unsupported architecture ${named}; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`);
}

function readRope(json: Json, file: string): { theta: number; scaling: RopeScaling } {
  // transformers 5.x folds theta and scaling into rope_parameters; 4.x keeps rope_theta + rope_scaling.
  const ropeKey = json.rope_parameters != null ? "rope_parameters" : "rope_scaling";
  const params = (json[ropeKey] ?? null) as Json | null;
  if (params !== null && (typeof params !== "object" || Array.isArray(params))) {
    throw new ModelLoadError(`${file}: ${ropeKey} must be an object or null, got ${JSON.stringify(params)}`);
  }
  const theta = readPositive(params ?? {}, "rope_theta", file, readPositive(json, "rope_theta", file, 10000), `${ropeKey}.rope_theta`);
  const type = String(params?.rope_type ?? params?.type ?? "default");
  // NOTE: RoPE over part of each head (partial_rotary_factor < 1) is not what these architectures' kernels do
  for (const [where, key] of [[json, "partial_rotary_factor"], [params ?? {}, `${ropeKey}.partial_rotary_factor`]] as const) {
    const factor = where.partial_rotary_factor;
    if (factor != null && factor !== 1) throw new UnsupportedModelError(`${file}: field "${key}" is ${JSON.stringify(factor)}; only RoPE over the whole head (1) is supported`);
  }
  const field = (key: string, fallback?: number) => readPositive(params ?? {}, key, file, fallback, `${ropeKey}.${key}`);
  switch (type) {
    case "default":
      return { theta, scaling: { type: "default" } };
    case "linear":
      return { theta, scaling: { type: "linear", factor: field("factor") } };
    case "llama3": {
      const scaling = {
        type: "llama3",
        factor: field("factor"),
        lowFreqFactor: field("low_freq_factor"),
        highFreqFactor: field("high_freq_factor"),
        originalMaxPositions: field("original_max_position_embeddings"),
      } as const;
      // NOTE: RoPE interpolates over (low, high); an empty or inverted band divides by zero or flips the blend.
      if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
        throw new ModelLoadError(`${file}: field "${ropeKey}.high_freq_factor" (${scaling.highFreqFactor}) must be greater than "${ropeKey}.low_freq_factor" (${scaling.lowFreqFactor})`);
      }
      return { theta, scaling };
    }
    default:
      throw new UnsupportedModelError(`${file}: ${ropeKey} rope_type "${type}" is not supported (supported: default, linear, llama3)`);
  }
}

/**
 * Which layers slide, as transformers decides: the span is sliding_window (Qwen2/Qwen3 only with
 * use_sliding_window; without a span no layer slides; Llama never); the layers are an explicit layer_types
 * list, else every layer for Mistral, those from max_window_layers (default 28) on for Qwen. The cache
 * runs one rule in every layer, so a mix of sliding and full layers is refused, and a span that is not a
 * multiple of the 16-token page (the local window's unit) is refused rather than rounded.
 */
function readSlidingWindow(json: Json, architecture: Architecture, numLayers: number, maxPositions: number, file: string): number | null {
  // NOTE: transformers' Llama attends fully whatever its config says of windows
  if (architecture === "llama") return null;
  const qwen = architecture === "qwen2" || architecture === "qwen3";
  let span = json.sliding_window == null ? null : readInt(json, "sliding_window", file);
  if (qwen && json.use_sliding_window !== true) span = null;
  let sliding: boolean[];
  let source: string;
  if (json.layer_types != null) {
    const types = json.layer_types;
    if (!Array.isArray(types) || types.length !== numLayers || types.some((t) => t !== "full_attention" && t !== "sliding_attention")) {
      throw new ModelLoadError(`${file}: field "layer_types" must list "full_attention" or "sliding_attention" for each of the ${numLayers} layers`);
    }
    [sliding, source] = [types.map((t) => t === "sliding_attention"), "layer_types"];
  } else if (qwen) {
    const first = readCount(json, "max_window_layers", file, 28);
    [sliding, source] = [Array.from({ length: numLayers }, (_, l) => l >= first), "max_window_layers"];
  } else {
    [sliding, source] = [new Array<boolean>(numLayers).fill(architecture === "mistral"), "sliding_window"];
  }
  const count = sliding.filter(Boolean).length;
  if (span === null || count === 0) return null;
  if (count < numLayers) {
    throw new UnsupportedModelError(`${file}: field "${source}" makes ${count} of ${numLayers} layers attend within a sliding window and the rest fully; wgkv runs one attention rule in every layer`);
  }
  if (span >= maxPositions) return null; // never binds
  if (span % 16 !== 0) throw new UnsupportedModelError(`${file}: field "sliding_window" is ${span}; wgkv's local window must be a multiple of 16 tokens`);
  return span;
}

/** A true/false field (absent: false); a string "true" would otherwise read as false and blame a tensor. */
function readFlag(json: Json, key: string, file: string): boolean {
  const value = json[key] ?? false;
  if (typeof value !== "boolean") throw new ModelLoadError(`${file}: field "${key}" must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** Quantized checkpoints (GPTQ, AWQ, bitsandbytes, FP8) store weights wgkv cannot read; say so before their tensors do. */
function refuseQuantized(json: Json, file: string): void {
  const q = json.quantization_config;
  if (q == null) return;
  const method = typeof q === "object" && typeof (q as Json).quant_method === "string" ? ` (quant_method "${(q as Json).quant_method}")` : "";
  throw new UnsupportedModelError(`${file}: field "quantization_config"${method}: quantized checkpoints are not supported; use the model's bf16, f16 or f32 weights`);
}

/** A whole number >= 0 (a count that may be zero), else `fallback` when absent. */
function readCount(json: Json, key: string, file: string, fallback: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_SIZE) {
    throw new ModelLoadError(`${file}: field "${key}" must be a whole number, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * `bos_token_id` / `eos_token_id`: one id or a list (null: none), each a non-negative integer below vocab_size:
 * the model never produces an id past it, so such an end id would never stop a generation (generation_config.json's too).
 */
export function readTokenIds(value: unknown, key: string, file: string, vocabSize: number): number[] {
  if (value == null) return [];
  const ids = Array.isArray(value) ? value : [value];
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) throw new ModelLoadError(`${file}: field "${key}" must hold non-negative integer token ids, got ${JSON.stringify(value)}`);
    if ((id as number) >= vocabSize) throw new ModelLoadError(`${file}: field "${key}" holds token id ${id as number}, past the vocabulary (vocab_size ${vocabSize} in config.json)`);
  }
  return ids as number[];
}

/** Sizes beyond this are not a model but a corrupt or hostile file (and would overflow 32-bit indices). */
const MAX_SIZE = 2 ** 31 - 1;

/** Depths beyond any model's (the deepest have ~130 layers); per-layer bookkeeping is sized by it. */
const MAX_LAYERS = 1024;

/** Context lengths beyond any model's (the longest are 10M tokens); the KV bookkeeping is sized by it. */
const MAX_POSITIONS = 2 ** 24;

function readMaxPositions(json: Json, file: string): number {
  const n = readInt(json, "max_position_embeddings", file, 4096);
  if (n > MAX_POSITIONS) throw new ModelLoadError(`${file}: field "max_position_embeddings" is ${n}, more than the ${MAX_POSITIONS} positions of any model`);
  return n;
}

function readInt(json: Json, key: string, file: string, fallback?: number): number {
  const value = json[key];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelLoadError(`${file}: missing required field "${key}"`);
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0 || value > MAX_SIZE) {
    throw new ModelLoadError(`${file}: field "${key}" must be a positive integer up to ${MAX_SIZE}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `label` is the field's name in messages (a dotted path for nested fields). */
function readNumber(json: Json, key: string, file: string, fallback?: number, label = key): number {
  const value = json[key];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelLoadError(`${file}: missing required field "${label}"`);
  }
  if (typeof value !== "number" || !Number.isFinite(value)) {
    // NOTE: JSON's 1e999 parses to Infinity, which JSON.stringify would print as null.
    throw new ModelLoadError(`${file}: field "${label}" must be a finite number, got ${typeof value === "number" ? String(value) : JSON.stringify(value)}`);
  }
  return value;
}

/** A finite number > 0 (an epsilon, a RoPE base or factor): zero or a negative breaks the math without an error. */
function readPositive(json: Json, key: string, file: string, fallback?: number, label = key): number {
  const value = readNumber(json, key, file, fallback, label);
  if (!(value > 0)) throw new ModelLoadError(`${file}: field "${label}" must be a positive number, got ${JSON.stringify(json[key])}`);
  return value;
}
