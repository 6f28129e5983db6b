/**
 * @module server/serving
 *
 * The model a server serves and how one request runs on it: the name
 * clients call it by, the KV policy of each request (the server's default,
 * or the request's `wgkv` override where the server allows one), and a
 * generation started on the model's engine with the request's sampling,
 * stop strings, abort signal and logprobs.
 */
import { startGeneration, type GenerationStream } from "../engine/generation.js";
import type { Model } from "../engine/model.js";
import { resolveKvOptions, type KvOptionNames, type KvOptions } from "../engine/kvOptions.js";
import { isUserError } from "../errors.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { badRequest } from "./errors.js";
import { LogprobTracker } from "./logprobs.js";
import type { RequestPlan } from "./requestPlan.js";
import type { KvOverride } from "./schemas.js";

const OVERRIDE_NAMES: KvOptionNames = {
  window: "wgkv.window", admission: "wgkv.admission", selection: "wgkv.selection", eviction: "wgkv.eviction", gate: "--gate", tau: "wgkv.tau",
};

export class Serving {
  readonly #defaultPolicy: KvPolicy;

  constructor(
    readonly model: Model,
    /** The name in /v1/models and in every request's `model`. */
    readonly id: string,
    /** The server's KV options (its gate already loaded). */
    readonly kv: KvOptions,
    readonly allowKvOverride: boolean,
  ) {
    this.#defaultPolicy = resolveKvOptions(kv, model);
  }

  /** The KV policy of a request: the server's, or its override merged over the server's options. */
  policyFor(override: KvOverride | undefined): KvPolicy {
    if (!override || Object.keys(override).length === 0) return this.#defaultPolicy;
    if (!this.allowKvOverride) throw badRequest("per-request KV policies are disabled on this server", "wgkv", "unsupported_parameter");
    // NOTE: the server's gate and tau belong to its gate admission; an override to another admission drops them
    const base = override.admission !== undefined && override.admission.trim() !== "gate" ? { ...this.kv, gate: null, tau: undefined } : this.kv;
    if (override.admission?.trim() === "gate" && !this.kv.gate) throw badRequest("wgkv.admission gate: this server has no write gate (start it with --gate FILE)", "wgkv.admission");
    let policy: KvPolicy;
    try {
      policy = resolveKvOptions({ ...base, ...override }, this.model, OVERRIDE_NAMES);
    } catch (err) {
      // NOTE: the messages start with the field they name (wgkv.window ...), which is the error's param
      if (isUserError(err)) throw badRequest(err.message, /^wgkv\.\w+/.exec(err.message)?.[0] ?? "wgkv");
      throw err;
    }
    // NOTE: checked here, before a stream starts, not when the engine takes the request (a 200 already sent)
    const largest = this.model.engine.config.maxWindow;
    if (policy.window > largest) throw badRequest(`wgkv.window ${policy.window} exceeds this server's largest window ${largest} (start it with --window N to allow larger)`, "wgkv.window");
    return policy;
  }

  /** Starts a request's generation; `signal` (the client's connection) aborts it and frees its pages. */
  start(plan: RequestPlan, policy: KvPolicy, signal: AbortSignal): { stream: GenerationStream; logprobs: LogprobTracker | null } {
    const logprobs = plan.logprobs === null ? null : new LogprobTracker(this.model.requireTokenizer(), plan.logprobs);
    const stream = startGeneration(this.model, plan.promptIds, {
      maxNewTokens: plan.maxNewTokens,
      temperature: plan.temperature,
      topK: plan.topK,
      topP: plan.topP,
      ...(plan.minP > 0 ? { minP: plan.minP } : {}),
      seed: plan.seed,
      stop: plan.stop,
      ...(plan.ignoreEos ? { ignoreEos: true } : {}),
      signal,
      ...(logprobs ? { logitsFrom: plan.promptIds.length - 1, onLogits: logprobs.onLogits } : {}),
    }, () => policy);
    return { stream, logprobs };
  }
}
