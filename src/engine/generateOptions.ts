/**
 * @module engine/generateOptions
 *
 * What `generate()` takes besides the prompt, and its checks: each bad
 * value is a one-line InvalidInputError naming the option.
 */
import { InvalidInputError, shownValue } from "../errors.js";
import type { KvOptions } from "./kvOptions.js";
import type { SequenceOptions } from "./sequence.js";

export interface SamplingOptions {
  /** 0 (default) means greedy. */
  readonly temperature?: number;
  /** Keep the k most likely tokens; 0 or absent keeps all. */
  readonly topK?: number;
  /** Keep the smallest set whose probability reaches p; 1 or absent keeps all. */
  readonly topP?: number;
  /** Drop tokens less likely than minP times the most likely one (after temperature); 0 or absent keeps all. */
  readonly minP?: number;
  /** Seed of the random generator; the same seed gives the same tokens (default: random). */
  readonly seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 256; 0 runs the prompt only). */
  readonly maxNewTokens?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  readonly stop?: readonly string[];
  /** Aborts the generation (its pages return to the pool at once). */
  readonly signal?: AbortSignal;
  /** Generate past end-of-sequence tokens, to maxNewTokens (benchmarks: vLLM's and llama.cpp's ignore_eos). */
  readonly ignoreEos?: boolean;
  /** KV cache behaviour: admission, selection, eviction, window, gate, tau. */
  readonly kv?: KvOptions;
  /** Positions whose logits go to onLogits: prompt positions from here on, and every generated one. */
  readonly logitsFrom?: number;
  /** Receives logits [n, V] of positions pos0 .. pos0 + n - 1 (see logitsFrom). */
  readonly onLogits?: (pos0: number, logits: Float32Array, n: number) => void;
  /** Feed the prompt from this position on one token per step, as decode does (default: in chunks). */
  readonly singleTokenFrom?: number;
  /** Receives the write gate's scores [Hkv, n] of each layer for positions pos0 .. (gate admission only). */
  readonly onGateScores?: (layer: number, pos0: number, n: number, scores: Float32Array) => void;
  /** Called after each step that read prompt tokens: how many of them the cache holds (progress of a long prefill). */
  readonly onPromptProgress?: (numComputed: number, numPromptTokens: number) => void;
}

const OPTION_KEYS = new Set([
  "maxNewTokens", "temperature", "topK", "topP", "minP", "seed", "stop", "ignoreEos", "signal", "kv", "logitsFrom", "onLogits", "singleTokenFrom", "onGateScores", "onPromptProgress",
]);

/** Checks generate options; returns the sequence settings other than the KV policy. */
export function checkGenerateOptions(options: GenerateOptions): Omit<SequenceOptions, "policy" | "eosTokenIds"> & { stop: readonly string[] } {
  if (typeof options !== "object" || options === null) throw new InvalidInputError(`generate options must be an object, got ${shownValue(options)}`);
  for (const key of Object.keys(options)) if (!OPTION_KEYS.has(key)) throw new InvalidInputError(`unknown generate option "${key}"`);
  const int = (name: string, value: unknown, min: number) => {
    if (!(typeof value === "number" && Number.isSafeInteger(value) && value >= min)) throw new InvalidInputError(`${name} must be an integer >= ${min}, got ${shownValue(value)}`);
    return value;
  };
  const maxNewTokens = int("maxNewTokens", options.maxNewTokens ?? 256, 0);
  const temperature = options.temperature ?? 0;
  if (!(typeof temperature === "number" && Number.isFinite(temperature) && temperature >= 0)) throw new InvalidInputError(`temperature must be a number >= 0, got ${shownValue(temperature)}`);
  const topK = int("topK", options.topK ?? 0, 0);
  const topP = options.topP ?? 1;
  if (!(typeof topP === "number" && topP > 0 && topP <= 1)) throw new InvalidInputError(`topP must be a number in (0, 1], got ${shownValue(topP)}`);
  const minP = options.minP ?? 0;
  if (!(typeof minP === "number" && minP >= 0 && minP <= 1)) throw new InvalidInputError(`minP must be a number in [0, 1], got ${shownValue(minP)}`);
  const seed = int("seed", options.seed ?? Math.floor(Math.random() * 2 ** 31), 0);
  const stop = options.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== "string" || s.length === 0)) throw new InvalidInputError(`stop must be a list of non-empty strings, got ${shownValue(stop)}`);
  if (options.signal !== undefined && !(typeof options.signal === "object" && options.signal !== null && "aborted" in options.signal)) throw new InvalidInputError("signal must be an AbortSignal");
  const logitsFrom = options.logitsFrom === undefined ? null : int("logitsFrom", options.logitsFrom, 0);
  const singleTokenFrom = options.singleTokenFrom === undefined ? null : int("singleTokenFrom", options.singleTokenFrom, 0);
  for (const name of ["onLogits", "onGateScores", "onPromptProgress"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") throw new InvalidInputError(`${name} must be a function`);
  }
  return { maxNewTokens, sampling: { temperature, topK, topP, minP, seed }, logitsFrom, singleTokenFrom, traceGateScores: options.onGateScores !== undefined, stop };
}
