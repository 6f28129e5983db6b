/**
 * @module server/app
 *
 * The OpenAI-compatible HTTP API as a Hono app (platform-neutral: the Node
 * listener is in cli/serve.ts): /v1/chat/completions and /v1/completions
 * (streaming or not), /v1/models, /health, /metrics. Every error thrown
 * while handling a request is turned into OpenAI's error JSON in one place,
 * the app's onError (server/errors.ts).
 */
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { ApiError, toErrorResponse } from "./errors.js";
import { limitBody } from "./bodyLimit.js";
import { ServerMetrics } from "./metrics.js";
import { RequestQueue } from "./requestQueue.js";
import { chatRequestSchema, completionRequestSchema, parseBody } from "./schemas.js";
import { planChat, planCompletion, type PlanLimits } from "./requestPlan.js";
import type { Serving } from "./serving.js";
import { runNonStreaming, runStreaming } from "./responders.js";
import { checkApiKey } from "./auth.js";

export interface ServerOptions extends PlanLimits {
  /** The name clients use for the model (known before it loads). */
  readonly modelId: string;
  /** Requests must send `Authorization: Bearer <apiKey>` (except /health and /metrics). */
  readonly apiKey?: string;
  /** Requests run at once (the engine's sequence slots). */
  readonly maxRunning: number;
  /** Requests waiting beyond those; more get 429. */
  readonly maxQueue: number;
  readonly maxBodyBytes: number;
  /** Browser origins answered with CORS headers and preflights ("*": any); none by default. */
  readonly corsOrigins?: readonly string[];
  /** Where bugs are reported (with their stack); users get a one-line 500. */
  readonly logError: (err: unknown) => void;
}

/** What the server is doing: loading, serving, draining. */
export class ServerState {
  serving: Serving | null = null;
  draining = false;
  readonly queue: RequestQueue;
  readonly metrics: ServerMetrics;

  constructor(readonly options: ServerOptions) {
    this.queue = new RequestQueue(options.maxRunning, options.maxQueue);
    this.metrics = new ServerMetrics(() => this.serving?.model.engine.stats() ?? null, this.queue);
  }

  /** The serving model, or a 503 while it loads or the server drains. */
  requireServing(): Serving {
    if (this.draining) throw new ApiError(503, "the server is shutting down", "server_error", null, "server_shutting_down");
    if (!this.serving) throw new ApiError(503, "the model is still loading; retry shortly", "server_error", null, "model_loading", { "Retry-After": "1" });
    return this.serving;
  }
}

export function createApp(state: ServerState): Hono {
  const { options, metrics } = state;
  const app = new Hono();

  app.onError((err, c) => {
    const r = toErrorResponse(err, options.logError);
    for (const [k, v] of Object.entries(r.headers)) c.header(k, v);
    return c.json(r.body, r.status);
  });
  app.notFound((c) => c.json({ error: { message: `no route ${c.req.method} ${c.req.path}`, type: "invalid_request_error", param: null, code: "not_found" } }, 404));

  // counted after the handler (and onError) chose the status; any other path is "other", so scanners cannot add series
  app.use(async (c, next) => {
    await next();
    metrics.countRequest(COUNTED_PATHS.has(c.req.path) ? c.req.path : "other", c.res.status);
  });

  // NOTE: before the key check: a browser's preflight carries no Authorization header
  if (options.corsOrigins) {
    const origins = options.corsOrigins;
    app.use(cors({ origin: origins.includes("*") ? "*" : [...origins], allowHeaders: ["Authorization", "Content-Type"], allowMethods: ["GET", "POST", "OPTIONS"], maxAge: 600 }));
  }

  app.get("/health", (c) => {
    if (state.draining) return c.json({ status: "draining" }, 503);
    if (!state.serving) return c.json({ status: "loading" }, 503);
    return c.json({ status: "ok", model: options.modelId });
  });

  app.get("/metrics", async (c) => {
    const { contentType, body } = await metrics.text();
    return c.body(body, 200, { "Content-Type": contentType });
  });

  app.use("/v1/*", async (c, next) => {
    if (options.apiKey !== undefined) checkApiKey(c.req.header("authorization"), options.apiKey);
    await next();
  });

  const modelObject = { id: options.modelId, object: "model", created: 0, owned_by: "wgkv" };
  app.get("/v1/models", (c) => c.json({ object: "list", data: [modelObject] }));
  app.get("/v1/models/:model", (c) => {
    checkModel(c.req.param("model"), options.modelId);
    return c.json(modelObject);
  });
  // NOTE: clients that default to the Responses API (the AI SDK's provider(id)) are told what to call instead
  app.post("/v1/responses", () => {
    throw new ApiError(404, "this server has no Responses API: use /v1/chat/completions (with the AI SDK: provider.chat(id))", "invalid_request_error", null, "not_found");
  });

  const limit = limitBody(options.maxBodyBytes);

  app.post("/v1/chat/completions", limit, async (c) => {
    const serving = state.requireServing();
    const req = parseBody(chatRequestSchema, await readJson(c));
    checkModel(req.model, serving.id);
    return respond(c, planChat(serving.model, req, options));
  });

  app.post("/v1/completions", limit, async (c) => {
    const serving = state.requireServing();
    const req = parseBody(completionRequestSchema, await readJson(c));
    checkModel(req.model, serving.id);
    return respond(c, planCompletion(serving.model, req, options));
  });

  async function respond(c: Context, plan: ReturnType<typeof planChat>) {
    const serving = state.requireServing();
    const policy = serving.policyFor(plan.kv);
    const signal = c.req.raw.signal;
    const arrivedAt = performance.now();
    const release = await state.queue.acquire(signal);
    const run = { serving, plan, policy, signal, release, arrivedAt, metrics };
    return plan.stream ? runStreaming(c, run, options.logError) : runNonStreaming(c, run);
  }

  return app;
}

/** The paths /metrics counts by name. */
const COUNTED_PATHS = new Set(["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"]);

async function readJson(c: Context): Promise<unknown> {
  // NOTE: a form or text/plain POST is what a page on another site can send without asking (no CORS preflight)
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new ApiError(415, `the request body must be JSON sent as Content-Type: application/json, got ${JSON.stringify(type || "none")}`, "invalid_request_error", null, "unsupported_media_type");
  }
  try {
    return await c.req.json();
  } catch {
    throw new ApiError(400, "we could not parse the JSON body of your request: it is not valid JSON", "invalid_request_error", null, "invalid_json");
  }
}

function checkModel(model: string, id: string): void {
  if (model !== id) throw new ApiError(404, `the model '${model}' does not exist on this server (it serves '${id}')`, "invalid_request_error", "model", "model_not_found");
}
