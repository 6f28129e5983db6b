/**
 * @module engine/generate
 *
 * The generation loop: prefill the prompt, then sample, stream and stop on
 * end-of-sequence ids, stop strings or the token limit.
 */
import { InvalidInputError } from "../errors.js";
import { Sampler, type SamplingOptions } from "../generate/sampler.js";
import { scanStops } from "../generate/stopStrings.js";
import type { KvSettings } from "../kv/kvSettings.js";
import type { KvReport, SequenceKv } from "../kv/sequenceKv.js";
import type { Model } from "./model.js";

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 256). */
  readonly maxNewTokens?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  readonly stop?: readonly string[];
  /** Aborts between tokens. */
  readonly signal?: AbortSignal;
  /** KV cache settings for this generation (admission, selection, eviction, window, page dtype). */
  readonly kv?: Partial<KvSettings>;
}

export type FinishReason = "eos" | "stop" | "length" | "aborted";

/** One streamed step: the new token and the text it made safe to show. */
export interface GenerationChunk {
  readonly tokenId: number;
  /** Text delta; may be empty while a multi-byte character or possible stop string is pending. */
  readonly text: string;
}

export interface GenerationResult {
  /** Generated ids, including the end-of-sequence id when generation stopped on one. */
  readonly tokenIds: number[];
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly numPromptTokens: number;
  /** Wall-clock milliseconds of the prefill and of all decode steps. */
  readonly prefillMs: number;
  readonly decodeMs: number;
  /** The KV cache at the end: admitted counts and bytes resident, peak and under full attention. */
  readonly kv: KvReport;
}

/** Streams tokens for a prompt given as token ids; returns the summary when done. */
export async function* generateFromIds(model: Model, promptIds: readonly number[], options: GenerateOptions = {}): AsyncGenerator<GenerationChunk, GenerationResult> {
  const maxNewTokens = options.maxNewTokens ?? 256;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InvalidInputError(`max new tokens must be a positive integer, got ${maxNewTokens}`);
  model.validatePrompt(promptIds, maxNewTokens);
  const sampler = new Sampler(options);
  const stops = options.stop ?? [];

  const kv = model.createSequence(promptIds.length + maxNewTokens, options.kv);
  try {
    return yield* decodeLoop(model, kv, promptIds, maxNewTokens, sampler, stops, options.signal);
  } finally {
    kv.release();
  }
}

async function* decodeLoop(
  model: Model,
  kv: SequenceKv,
  promptIds: readonly number[],
  maxNewTokens: number,
  sampler: Sampler,
  stops: readonly string[],
  signal: AbortSignal | undefined,
): AsyncGenerator<GenerationChunk, GenerationResult> {
  const tokenizer = model.tokenizer;
  const t0 = performance.now();
  let logits = await model.prefill(promptIds, kv);
  const prefillMs = performance.now() - t0;

  const tokenIds: number[] = [];
  let emitted = 0; // characters of text already streamed
  let text = "";
  let finishReason: FinishReason = "length";
  const t1 = performance.now();
  while (tokenIds.length < maxNewTokens) {
    if (signal?.aborted) {
      finishReason = "aborted";
      break;
    }
    const id = sampler.sample(logits);
    tokenIds.push(id);
    if (model.eosTokenIds.has(id)) {
      finishReason = "eos";
      yield { tokenId: id, text: "" };
      break;
    }
    if (tokenizer) {
      text = tokenizer.decode(tokenIds.filter((t) => !model.eosTokenIds.has(t)), { skipSpecialTokens: true });
      const scan = scanStops(text, stops);
      // NOTE: a trailing U+FFFD is an incomplete UTF-8 sequence that the next token may finish.
      let safe = scan.safeLength;
      while (safe > emitted && scan.stopAt < 0 && text.charCodeAt(safe - 1) === 0xfffd) safe--;
      const delta = text.slice(emitted, Math.max(emitted, safe));
      emitted += delta.length;
      if (scan.stopAt >= 0) {
        text = text.slice(0, scan.stopAt);
        finishReason = "stop";
        yield { tokenId: id, text: delta };
        break;
      }
      yield { tokenId: id, text: delta };
    } else {
      yield { tokenId: id, text: "" };
    }
    if (tokenIds.length >= maxNewTokens) break;
    logits = await model.step(id, kv);
  }
  if (finishReason !== "stop" && tokenizer) {
    text = tokenizer.decode(tokenIds.filter((t) => !model.eosTokenIds.has(t)), { skipSpecialTokens: true });
    if (text.length > emitted) yield { tokenId: -1, text: text.slice(emitted) };
  }
  return { tokenIds, text, finishReason, numPromptTokens: promptIds.length, prefillMs, decodeMs: performance.now() - t1, kv: kv.report() };
}

/** Collects a whole generation (no streaming). */
export async function generateAll(model: Model, promptIds: readonly number[], options: GenerateOptions = {}): Promise<GenerationResult> {
  const stream = generateFromIds(model, promptIds, options);
  for (;;) {
    const step = await stream.next();
    if (step.done) return step.value;
  }
}
