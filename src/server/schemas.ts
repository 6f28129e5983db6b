/**
 * @module server/schemas
 *
 * The request bodies of /v1/chat/completions and /v1/completions as zod
 * schemas. As OpenAI does, unknown fields are ignored (zod strips them) and
 * wrong types are refused, naming the field; a few known fields wgkv cannot
 * honour (n > 1, tools, penalties, echo) are refused rather than silently
 * ignored. `top_k` and `min_p` are the extensions llama.cpp and vLLM accept;
 * `wgkv` holds per-request KV policy overrides.
 */
import { z } from "zod";
import { badRequest, type ApiError } from "./errors.js";

const int = () => z.number().int();
const optional = <T extends z.ZodType>(schema: T) => schema.nullish();

/** A per-request KV policy: the same spec strings as the CLI's flags. */
export const kvOverrideSchema = z.strictObject({
  admission: z.string().optional(),
  selection: z.string().optional(),
  eviction: z.string().optional(),
  window: int().positive().optional(),
  tau: z.number().optional(),
});
export type KvOverride = z.infer<typeof kvOverrideSchema>;

const samplingFields = {
  model: z.string(),
  max_tokens: optional(int().min(0)),
  temperature: optional(z.number().min(0).max(2)),
  top_p: optional(z.number().gt(0).max(1)),
  // NOTE: vLLM spells "no top-k" -1, llama.cpp 0; both are accepted
  top_k: optional(int().min(-1)),
  min_p: optional(z.number().min(0).max(1)),
  // NOTE: vLLM's and llama.cpp's extension, for benchmarks that need answers of a fixed length
  ignore_eos: optional(z.boolean()),
  seed: optional(int()),
  stop: optional(z.union([z.string(), z.array(z.string()).max(16, "at most 16 stop sequences")], { error: "must be a string or a list of at most 16 strings" })),
  n: optional(int()),
  stream: optional(z.boolean()),
  stream_options: optional(z.object({ include_usage: optional(z.boolean()) })),
  user: z.string().nullish(),
  presence_penalty: optional(z.number()),
  frequency_penalty: optional(z.number()),
  logit_bias: optional(z.record(z.string(), z.number())),
  wgkv: kvOverrideSchema.nullish(),
};

// NOTE: any part type parses, so that planChat can refuse an image or audio part by name
const contentPart = z.object({ type: z.string(), text: z.string().optional() });
const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  // NOTE: optional, as OpenAI allows for an assistant turn (one that called tools)
  content: z.union([z.string(), z.array(contentPart), z.null()], { error: "must be a string, a list of content parts or null" }).optional(),
  name: z.string().nullish(),
});

export const chatRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(message).min(1),
  max_completion_tokens: optional(int().min(0)),
  logprobs: optional(z.boolean()),
  top_logprobs: optional(int().min(0).max(20)),
  tools: z.unknown().optional(),
  functions: z.unknown().optional(),
  response_format: optional(z.object({ type: z.string() })),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.string()), z.array(int().min(0)), z.array(z.array(int().min(0)))], { error: "must be a string or a list of token ids" }),
  logprobs: optional(int().min(0).max(20)),
  echo: optional(z.boolean()),
  best_of: optional(int()),
  suffix: optional(z.string()),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** Parses a JSON body with `schema`; the first problem becomes a 400 naming its field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("the request body must be a JSON object");
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  throw issueError(result.error.issues[0]!);
}

function issueError(issue: z.core.$ZodIssue): ApiError {
  const param = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
  if (issue.code === "invalid_type" && issue.input === undefined) return badRequest(`missing required parameter: '${param}'`, param, "missing_required_parameter");
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    return badRequest(`unknown parameter: '${param ? `${param}.` : ""}${key}'`, param ? `${param}.${key}` : key, "unknown_parameter");
  }
  return badRequest(`invalid value for '${param}': ${issue.message.replace(/^Invalid input: /, "")}`, param, "invalid_value");
}
