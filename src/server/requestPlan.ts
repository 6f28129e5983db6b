/**
 * @module server/requestPlan
 *
 * What an OpenAI request asks the engine for: prompt ids (chat messages
 * through the model's chat template, special-token text in them kept as
 * plain text), sampling settings, the token budget, stop strings, logprobs
 * and the per-request KV override. Everything refusable is refused here,
 * before the request queues: fields wgkv cannot honour, a prompt over the
 * context (400 `context_length_exceeded`, never 413: the openai client would
 * not retry it either way, but 400 is what OpenAI sends).
 */
import type { Model } from "../engine/model.js";
import { promptToIds } from "../engine/prompt.js";
import type { ChatMessage } from "../tokenizer/tokenizer.js";
import { badRequest } from "./errors.js";
import type { ChatRequest, CompletionRequest, KvOverride } from "./schemas.js";

export interface RequestPlan {
  readonly kind: "chat" | "completion";
  readonly promptIds: number[];
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly seed: number | undefined;
  readonly stop: string[];
  readonly ignoreEos: boolean;
  /** null: no logprobs; else how many top alternatives per token. */
  readonly logprobs: number | null;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly kv: KvOverride | undefined;
}

export interface PlanLimits {
  /** max_tokens when the request gives none (cut to what the context leaves). */
  readonly defaultMaxTokens: number;
}

export function planChat(model: Model, req: ChatRequest, limits: PlanLimits): RequestPlan {
  refuseUnsupported(req);
  if (req.tools != null || req.functions != null) throw badRequest("tools and functions are not supported by this server", req.tools != null ? "tools" : "functions", "unsupported_parameter");
  if (req.response_format && req.response_format.type !== "text") throw badRequest(`response_format ${req.response_format.type} is not supported (only "text")`, "response_format", "unsupported_parameter");
  if (req.top_logprobs != null && !req.logprobs) throw badRequest("top_logprobs needs logprobs: true", "top_logprobs");
  const messages: ChatMessage[] = req.messages.map((m, i) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string" ? m.content : (m.content ?? []).map((p, j) => textOfPart(p, `messages[${i}].content[${j}]`)).join(""),
  }));
  refuseLongText(model, messages.reduce((n, m) => n + m.content.length, 0), req.max_completion_tokens ?? req.max_tokens, "messages");
  const ids = promptToIds(model, { messages });
  const logprobs = req.logprobs ? (req.top_logprobs ?? 0) : null;
  return common(model, req, "chat", ids, req.max_completion_tokens ?? req.max_tokens, logprobs, "messages", limits);
}

export function planCompletion(model: Model, req: CompletionRequest, limits: PlanLimits): RequestPlan {
  refuseUnsupported(req);
  if (req.echo) throw badRequest("echo is not supported by this server", "echo", "unsupported_parameter");
  if (req.best_of != null && req.best_of !== 1) throw badRequest("best_of must be 1 on this server", "best_of", "unsupported_parameter");
  if (req.suffix) throw badRequest("suffix is not supported by this server", "suffix", "unsupported_parameter");
  const p = req.prompt;
  const text = typeof p === "string" ? p : p.length === 1 && typeof p[0] === "string" ? p[0] : null;
  if (text !== null) refuseLongText(model, text.length, req.max_tokens, "prompt");
  let ids: number[];
  if (typeof p === "string") ids = promptToIds(model, p);
  else if (p.length === 1 && typeof p[0] === "string") ids = promptToIds(model, p[0]);
  else if (p.length > 0 && p.every((x) => typeof x === "number")) ids = p as number[];
  else if (p.length === 1 && Array.isArray(p[0])) ids = p[0];
  else throw badRequest("prompt must be one string or one list of token ids: send one prompt per request", "prompt", "unsupported_parameter");
  return common(model, req, "completion", ids, req.max_tokens, req.logprobs ?? null, "prompt", limits);
}

/** The text of a content part; other parts (images, audio, files) are refused by name. */
function textOfPart(part: { type: string; text?: string }, param: string): string {
  if (part.type !== "text") throw badRequest(`only text content parts are supported, got ${JSON.stringify(part.type)}`, param, "unsupported_parameter");
  if (typeof part.text !== "string") throw badRequest("a text part needs its text", `${param}.text`, "missing_required_parameter");
  return part.text;
}

/**
 * A text whose length alone proves it over the context is refused before the work of tokenizing it
 * (megabytes take seconds of the event loop, while every other request waits).
 */
function refuseLongText(model: Model, numChars: number, maxTokens: number | null | undefined, promptParam: string): void {
  const context = model.engine.config.maxContext;
  const atLeast = Math.floor(numChars / model.requireTokenizer().maxCharsPerToken);
  const asked = maxTokens ?? 1;
  if (atLeast + asked > context) {
    throw badRequest(`this model's maximum context length is ${context} tokens; the request asks for at least ${atLeast + asked} (at least ${atLeast} in the ${promptParam}, ${asked} in the completion)`, promptParam, "context_length_exceeded");
  }
}

function refuseUnsupported(req: ChatRequest | CompletionRequest): void {
  if (req.n != null && req.n !== 1) throw badRequest(`n must be 1 on this server (one choice per request), got ${req.n}`, "n", "unsupported_parameter");
  for (const name of ["presence_penalty", "frequency_penalty"] as const) {
    if (req[name] != null && req[name] !== 0) throw badRequest(`${name} is not supported by this server (only 0)`, name, "unsupported_parameter");
  }
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0) throw badRequest("logit_bias is not supported by this server", "logit_bias", "unsupported_parameter");
}

function common(
  model: Model, req: ChatRequest | CompletionRequest, kind: RequestPlan["kind"], ids: number[], maxTokens: number | null | undefined,
  logprobs: number | null, promptParam: string, limits: PlanLimits,
): RequestPlan {
  const context = model.engine.config.maxContext;
  if (ids.length === 0) throw badRequest("the prompt is empty", promptParam);
  const asked = maxTokens ?? 1;
  if (ids.length + asked > context) {
    throw badRequest(
      `this model's maximum context length is ${context} tokens; the request asks for ${ids.length + asked} (${ids.length} in the ${promptParam === "messages" ? "messages" : "prompt"}, ${asked} in the completion)`,
      promptParam, "context_length_exceeded",
    );
  }
  model.validatePrompt(ids, asked);
  const stop = req.stop == null ? [] : (typeof req.stop === "string" ? [req.stop] : req.stop).filter((s) => s.length > 0);
  return {
    kind,
    promptIds: ids,
    maxNewTokens: maxTokens ?? Math.min(limits.defaultMaxTokens, context - ids.length),
    // NOTE: OpenAI's default temperature is 1; send 0 for greedy
    temperature: req.temperature ?? 1,
    topK: req.top_k == null || req.top_k < 0 ? 0 : req.top_k,
    topP: req.top_p ?? 1,
    minP: req.min_p ?? 0,
    // NOTE: OpenAI's seeds are 64-bit: fold the high word in, so seeds 2^32 apart differ
    seed: req.seed == null ? undefined : (req.seed ^ Math.imul(Math.floor(req.seed / 2 ** 32), 0x9e3779b1)) >>> 0,
    stop,
    ignoreEos: req.ignore_eos ?? false,
    logprobs,
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    kv: req.wgkv ?? undefined,
  };
}
