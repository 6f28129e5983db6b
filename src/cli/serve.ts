/**
 * @module cli/serve
 *
 * `wgkv serve`: the OpenAI-compatible server (server/app.ts) on Node's HTTP
 * server through @hono/node-server. It listens at once and loads the model
 * behind it (/health says "loading" with 503 until then, so a load balancer
 * waits); SIGTERM or SIGINT drain: /health turns 503, new requests get 503,
 * accepted ones finish (at most --drain-timeout seconds), then the process
 * exits 0.
 */
import { Command } from "commander";
import { serve, type ServerType } from "@hono/node-server";
import { basename } from "node:path";
import { InvalidInputError } from "../errors.js";
import { createApp, ServerState } from "../server/app.js";
import { Serving } from "../server/serving.js";
import { withLoadedGate } from "../platform/node/gateFiles.js";
import { addBatchOptions, addKvOptions, addModelOptions, batchLimitsFromFlags, checkKvFlags, kvOptionsFromFlags, loadModelFromFlags, parseIntFlag, type BatchFlags, type KvFlags, type ModelFlags } from "./common.js";
import { parseKvMemory } from "../engine/engineConfig.js";

interface ServeFlags extends ModelFlags, KvFlags, BatchFlags {
  host: string;
  port: string;
  maxQueue: string;
  maxSeqs: string;
  apiKey?: string;
  servedModelName?: string;
  defaultMaxTokens: string;
  maxBody: string;
  kvOverride: boolean;
  drainTimeout: string;
  corsOrigin?: string;
}

export function serveCommand(): Command {
  return addBatchOptions(addKvOptions(addModelOptions(new Command("serve"))))
    .description("serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /health, /metrics)")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free port; the address is printed)", "8080")
    .option("--max-seqs <n>", "requests running at once, batched by the engine", "16")
    .option("--max-queue <n>", "requests waiting beyond those before a 429", "64")
    .option("--api-key <key>", "require 'Authorization: Bearer KEY' on /v1/* (default: $WGKV_API_KEY, else none)")
    .option("--served-model-name <name>", "the model's name in the API (default: the model folder's name)")
    .option("--default-max-tokens <n>", "max_tokens of a request that gives none (cut to what the context leaves)", "1024")
    .option("--max-body <size>", "largest request body (bytes or 1MiB, 16MB...)", "8MiB")
    .option("--no-kv-override", "refuse per-request KV policies (the request's wgkv field)")
    .option("--drain-timeout <s>", "at SIGTERM, seconds to let accepted requests finish before aborting them", "30")
    .option("--cors-origin <origins>", "answer browsers from these origins (comma-separated, or *): CORS headers and preflights (default: none)")
    .action(async (flags: ServeFlags) => {
      const port = parseIntFlag("--port", flags.port, 0)!;
      if (port > 65535) throw new InvalidInputError(`--port must be at most 65535, got "${flags.port}"`);
      const maxSeqs = parseIntFlag("--max-seqs", flags.maxSeqs)!;
      const maxQueue = parseIntFlag("--max-queue", flags.maxQueue, 0)!;
      const defaultMaxTokens = parseIntFlag("--default-max-tokens", flags.defaultMaxTokens)!;
      const drainTimeoutS = parseIntFlag("--drain-timeout", flags.drainTimeout, 0)!;
      const maxBodyBytes = parseSize("--max-body", flags.maxBody);
      const apiKey = flags.apiKey ?? (process.env.WGKV_API_KEY || undefined);
      if (apiKey !== undefined && apiKey.trim() === "") throw new InvalidInputError("--api-key is empty");
      checkKvFlags(flags);
      const modelId = flags.servedModelName ?? basename(flags.model.replace(/\/+$/, ""));
      const log = (line: string) => process.stderr.write(`wgkv serve: ${line}\n`);
      const corsOrigins = flags.corsOrigin?.split(",").map((o) => o.trim()).filter((o) => o !== "");
      if (corsOrigins?.length === 0) throw new InvalidInputError("--cors-origin is empty; give origins such as http://localhost:3000, or *");
      const state = new ServerState({
        modelId, apiKey, maxRunning: maxSeqs, maxQueue, maxBodyBytes, defaultMaxTokens, corsOrigins,
        logError: (err) => log(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
      });
      const app = createApp(state);
      const server = await listen(app.fetch, flags.host, port);
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      process.stdout.write(`wgkv serve: listening on http://${flags.host.includes(":") ? `[${flags.host}]` : flags.host}:${bound} (model ${modelId} loading)\n`);

      const ticker = setInterval(() => state.metrics.tick(), 1000);
      ticker.unref();
      let shuttingDown = false;
      const shutdown = async (signal: string) => {
        if (shuttingDown) return;
        shuttingDown = true;
        state.draining = true;
        log(`${signal}: draining ${state.queue.numRunning} running and ${state.queue.numWaiting} waiting requests`);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const drained = await Promise.race([state.queue.idle().then(() => true), sleep(drainTimeoutS * 1000).then(() => false)]);
        if (!drained) log(`drain timeout: aborting ${state.queue.numRunning + state.queue.numWaiting} requests`);
        // NOTE: a request's slot is released once its last bytes are queued, not sent: wait for
        // its connection to go idle and close (kept-alive ones would otherwise hold the server open)
        const http = server as unknown as { closeIdleConnections(): void; closeAllConnections(): void };
        const poll = setInterval(() => http.closeIdleConnections(), 20);
        const allClosed = await Promise.race([closed.then(() => true), sleep(drained ? 2000 : 0).then(() => false)]);
        clearInterval(poll);
        if (!allClosed) http.closeAllConnections();
        clearInterval(ticker);
        state.serving?.model.dispose();
        process.exit(0);
      };
      process.on("SIGTERM", () => void shutdown("SIGTERM"));
      process.on("SIGINT", () => void shutdown("SIGINT"));

      const window = parseIntFlag("--window", flags.window);
      const model = await loadModelFromFlags(flags, {
        maxSeqs,
        maxWindow: window && window > 4096 ? window : undefined,
        ...batchLimitsFromFlags(flags),
      });
      const kv = await withLoadedGate(model, kvOptionsFromFlags(flags));
      state.serving = new Serving(model, modelId, kv ?? {}, flags.kvOverride);
      if (shuttingDown) return;
      process.stdout.write(`wgkv serve: ready (model ${modelId}, ${maxSeqs} running, queue ${maxQueue})\n`);
    });
}

/** Listens on host:port; a port in use or an address it cannot bind is a one-line error naming the flag. */
export function listen(fetch: (req: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(err.code === "EADDRINUSE" ? new InvalidInputError(`--port ${port}: ${hostname}:${port} is already in use`) : err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND" ? new InvalidInputError(`--host ${hostname}: cannot listen there (${err.code})`) : err);
    });
  });
}

function parseSize(flag: string, text: string): number {
  // NOTE: parseKvMemory reads a bare number up to 1 as a fraction; here it is always bytes
  if (/^\d+$/.test(text.trim()) && Number(text) >= 1) return Number(text);
  try {
    return parseKvMemory(text, Number.MAX_SAFE_INTEGER);
  } catch {
    throw new InvalidInputError(`${flag} must be a size in bytes (1048576, 1MiB, 16MB), got "${text}"`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
