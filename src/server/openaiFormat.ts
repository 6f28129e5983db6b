/**
 * @module server/openaiFormat
 *
 * Response bodies and stream chunks in OpenAI's shapes, for chat
 * (`chat.completion`, `chat.completion.chunk`) and legacy completions
 * (`text_completion`), with wgkv's per-request KV figures in a `wgkv`
 * extension field.
 */
import type { FinishReason } from "../engine/sequence.js";
import type { GenerationResult } from "../engine/generation.js";
import type { TokenLogprob } from "./logprobs.js";

export type Kind = "chat" | "completion";

/** What one response or stream is about: its id, time and model. */
export interface ResponseMeta {
  readonly kind: Kind;
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

export function newMeta(kind: Kind, model: string): ResponseMeta {
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${globalThis.crypto.randomUUID().replaceAll("-", "")}`;
  return { kind, id, created: Math.floor(Date.now() / 1000), model };
}

/** OpenAI's finish reasons: an end-of-sequence token and a stop string are both "stop". */
export function finishReason(reason: FinishReason): "stop" | "length" | null {
  return reason === "eos" || reason === "stop" ? "stop" : reason === "length" ? "length" : null;
}

export function usage(result: GenerationResult) {
  return { prompt_tokens: result.numPromptTokens, completion_tokens: result.tokenIds.length, total_tokens: result.numPromptTokens + result.tokenIds.length };
}

/** wgkv's extension: how much of the KV cache the request's policy admitted and held. */
export function kvStats(result: GenerationResult) {
  const kv = result.kv;
  const admitted = kv.admittedByHead.flat().reduce((a, b) => a + b, 0);
  const entries = kv.numTokens * kv.admittedByHead.length * (kv.admittedByHead[0]?.length ?? 0);
  return {
    admitted_fraction: entries > 0 ? admitted / entries : 0,
    kv_bytes: kv.residentBytes,
    kv_bytes_peak: kv.peakBytes,
    kv_bytes_full_attention: kv.fullAttentionBytes,
    num_preemptions: result.numPreemptions,
  };
}

/** Logprobs of a choice: chat's `{content: [...]}` or completions' parallel lists. */
export function formatLogprobs(kind: Kind, entries: readonly TokenLogprob[], textOffset0 = 0) {
  if (kind === "chat") {
    return {
      content: entries.map((e) => ({ token: e.token, logprob: e.logprob, bytes: e.bytes, top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })) })),
      refusal: null,
    };
  }
  let offset = textOffset0;
  const textOffset = entries.map((e) => {
    const at = offset;
    offset += e.token.length;
    return at;
  });
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}

/** The whole response of a request that does not stream. */
export function fullResponse(meta: ResponseMeta, result: GenerationResult, logprobs: readonly TokenLogprob[] | null) {
  const lp = logprobs ? formatLogprobs(meta.kind, logprobs) : null;
  const reason = finishReason(result.finishReason);
  const head = { id: meta.id, object: meta.kind === "chat" ? "chat.completion" : "text_completion", created: meta.created, model: meta.model };
  const choice = meta.kind === "chat"
    ? { index: 0, message: { role: "assistant", content: result.text, refusal: null }, logprobs: lp, finish_reason: reason }
    : { index: 0, text: result.text, logprobs: lp, finish_reason: reason };
  return { ...head, system_fingerprint: null, choices: [choice], usage: usage(result), wgkv: kvStats(result) };
}

/** One stream chunk with one choice: a role (chat's first chunk), a text delta, or the finish reason. */
export function chunk(meta: ResponseMeta, part: { role?: boolean; text?: string; logprobs?: readonly TokenLogprob[] | null; finish?: "stop" | "length" | null; textOffset?: number }, includeUsage: boolean) {
  const lp = part.logprobs ? formatLogprobs(meta.kind, part.logprobs, part.textOffset) : null;
  const finish = part.finish ?? null;
  const choice = meta.kind === "chat"
    ? { index: 0, delta: part.role ? { role: "assistant", content: "", refusal: null } : part.text !== undefined ? { content: part.text } : {}, logprobs: lp, finish_reason: finish }
    : { index: 0, text: part.text ?? "", logprobs: lp, finish_reason: finish };
  return {
    id: meta.id, object: meta.kind === "chat" ? "chat.completion.chunk" : "text_completion", created: meta.created, model: meta.model,
    system_fingerprint: null, choices: [choice], ...(includeUsage ? { usage: null } : {}),
  };
}

/** The last chunk when `stream_options.include_usage` is set: no choices, the usage (and wgkv's KV figures). */
export function usageChunk(meta: ResponseMeta, result: GenerationResult) {
  return {
    id: meta.id, object: meta.kind === "chat" ? "chat.completion.chunk" : "text_completion", created: meta.created, model: meta.model,
    system_fingerprint: null, choices: [], usage: usage(result), wgkv: kvStats(result),
  };
}
