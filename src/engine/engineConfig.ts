/**
 * @module engine/engineConfig
 *
 * The engine's settings, checked once: the KV memory budget (bytes, or a
 * fraction of what the backend can still allocate) that sizes the one page
 * pool, the page dtype, and the step's limits (tokens, sequences, logits
 * rows). Every bad value gets a one-line error naming the option.
 */
import type { KvDType } from "../backends/backend.js";
import { InvalidInputError, shownValue } from "../errors.js";
import { SNAPKV_OBSERVATION_WINDOW } from "../kvcache/eviction.js";
import { pageBytes } from "../kvcache/kvManager.js";
import type { ModelConfig } from "../model/config.js";

export const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];

export interface EngineOptions {
  /**
   * KV memory: bytes (a number, or "512MiB", "2GB", "1.5GiB"), or a fraction
   * in (0, 1] of what the backend can still allocate ("0.5"). Default: a
   * quarter of that, at most 1 GiB.
   */
  readonly kvMemory?: number | string;
  /** Page storage: f32 (exact, default), f16 or bf16 (half the memory). */
  readonly kvDType?: KvDType;
  /** Tokens one step runs (decode tokens plus prompt chunks; default 512, or the backend's preferredStepTokens). */
  readonly maxBatchTokens?: number;
  /** Sequences running at once (default 16). */
  readonly maxSeqs?: number;
  /** Most tokens of one prompt per step (default 512, or the backend's preferredStepTokens; at most the sequence's window under Quest or SnapKV, kvPolicy.ts maxStepTokens). */
  readonly prefillChunk?: number;
  /** Largest local window a request may use (default 4096, at most the context). */
  readonly maxWindow?: number;
  /** Longest sequence, prompt + new tokens (default max_position_embeddings). */
  readonly maxContext?: number;
  /**
   * Record the next decode step while the current one runs, where the backend queues reads (WebGPU;
   * engine/stepChain.ts). Default true; false: one step at a time (the same tokens, for A/B runs).
   */
  readonly chainSteps?: boolean;
}

export interface EngineConfig {
  readonly kvDType: KvDType;
  readonly numPages: number;
  readonly pageBytes: number;
  readonly kvMemoryBytes: number;
  readonly maxBatchTokens: number;
  readonly maxSeqs: number;
  readonly maxLogitRows: number;
  readonly prefillChunk: number;
  readonly maxWindow: number;
  readonly maxContext: number;
  readonly watermarkPages: number;
  readonly observationWindow: number;
  readonly chainSteps: boolean;
}

const DEFAULT_KV_MEMORY_CAP = 2 ** 30;

/** Checks the options against the model and the backend's free memory. */
export function resolveEngineConfig(options: EngineOptions, config: ModelConfig, availableBytes: number, defaultWindow: number): EngineConfig {
  const kvDType = options.kvDType ?? "f32";
  if (!KV_DTYPES.includes(kvDType)) throw new InvalidInputError(`kvDType must be one of ${KV_DTYPES.join(", ")}, got ${shownValue(kvDType)}`);
  const maxBatchTokens = positiveInt("maxBatchTokens", options.maxBatchTokens ?? 512);
  const maxSeqs = positiveInt("maxSeqs", options.maxSeqs ?? 16);
  const prefillChunk = positiveInt("prefillChunk", options.prefillChunk ?? 512);
  const maxContext = positiveInt("maxContext", options.maxContext ?? config.maxPositions);
  if (maxContext > config.maxPositions) throw new InvalidInputError(`maxContext ${maxContext} exceeds max_position_embeddings ${config.maxPositions}`);
  // NOTE: a window as long as the context is full attention already; larger ones change nothing
  const contextWindow = Math.ceil(maxContext / 16) * 16;
  // NOTE: a sliding-window model's requests take its span as their window by default (kvOptions.ts)
  const maxWindow = Math.min(contextWindow, positiveInt("maxWindow", options.maxWindow ?? Math.max(4096, defaultWindow, config.slidingWindow ?? 0)));
  if (maxWindow % 16 !== 0) throw new InvalidInputError(`maxWindow must be a multiple of 16, got ${maxWindow}`);
  const bytesPerPage = pageBytes(config.headDim, kvDType);
  const kvMemoryBytes = parseKvMemory(options.kvMemory, availableBytes);
  const numPages = Math.floor(kvMemoryBytes / bytesPerPage);
  const minPages = config.numLayers * config.numKvHeads * 2;
  if (numPages < minPages) {
    throw new InvalidInputError(`kvMemory ${kvMemoryBytes} bytes holds ${numPages} pages of ${bytesPerPage} bytes; this model needs at least ${minPages} (one token in every layer and KV head)`);
  }
  return {
    kvDType,
    numPages: numPages + 1, // the null page
    pageBytes: bytesPerPage,
    kvMemoryBytes,
    maxBatchTokens,
    maxSeqs,
    maxLogitRows: Math.max(64, maxSeqs),
    prefillChunk,
    maxWindow,
    maxContext,
    // NOTE: vLLM keeps 1% back; a new sequence then cannot take the pages running ones grow into next step
    watermarkPages: Math.ceil(numPages / 100),
    observationWindow: SNAPKV_OBSERVATION_WINDOW,
    chainSteps: flag("chainSteps", options.chainSteps, true),
  };
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new InvalidInputError(`${name} must be true or false, got ${shownValue(value)}`);
  return value;
}

/** A kvMemory text: a number (bytes, or a fraction of free memory when at most 1) and an optional unit. */
export const KV_MEMORY_PATTERN = /^(\d+(?:\.\d+)?|\.\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i;

/** Bytes from a kvMemory option: a byte count, a size with a unit, or a fraction of `availableBytes`. */
export function parseKvMemory(value: number | string | undefined, availableBytes: number): number {
  if (value === undefined) return Math.floor(Math.min(DEFAULT_KV_MEMORY_CAP, availableBytes / 4));
  const text = String(value).trim();
  const match = KV_MEMORY_PATTERN.exec(text);
  if (!match) throw new InvalidInputError(`kvMemory must be bytes (e.g. 536870912, 512MiB, 2GB) or a fraction of free memory in (0, 1], got ${shownValue(value)}`);
  const n = Number(match[1]);
  const unit = (match[2] ?? "").toLowerCase();
  if (unit === "" && n <= 1) {
    if (n === 0) throw new InvalidInputError("kvMemory must be more than 0");
    return Math.floor(n * availableBytes);
  }
  // NOTE: "1.5" is neither: a byte count is whole, a fraction at most 1
  if (unit === "" && !Number.isInteger(n)) throw new InvalidInputError(`kvMemory ${text}: bytes are a whole number, a fraction of free memory is at most 1`);
  const scale: Record<string, number> = { "": 1, b: 1, kb: 1e3, kib: 2 ** 10, mb: 1e6, mib: 2 ** 20, gb: 1e9, gib: 2 ** 30, tb: 1e12, tib: 2 ** 40 };
  const bytes = Math.floor(n * scale[unit]);
  if (bytes > availableBytes) throw new InvalidInputError(`kvMemory ${text} is more than the ${formatBytes(availableBytes)} the backend can still allocate`);
  return bytes;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidInputError(`${name} must be a positive integer, got ${shownValue(value)}`);
  return value;
}
