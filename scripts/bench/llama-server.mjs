#!/usr/bin/env node
// The baseline of wgkv's server bench: node-llama-cpp's batching behind the
// same OpenAI-style streaming endpoint, so one load generator drives both.
// One llama.cpp context with --slots sequences; every request takes a free
// sequence (waiting, without limit, as llama.cpp's server does) and its
// history is cleared first (no prefix reuse: wgkv has no prefix cache);
// node-llama-cpp batches the evaluations of all sequences into shared
// decode calls. Chat messages use the model's Llama-3 template.
//
//   node scripts/bench/llama-server.mjs --gguf /tmp/wgkv-tiny-chat.gguf --port 0 --slots 16
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { serve } from "@hono/node-server";
import { parseArgs } from "node:util";
import { getLlama } from "node-llama-cpp";

const { values: args } = parseArgs({
  options: { gguf: { type: "string" }, port: { type: "string", default: "0" }, slots: { type: "string", default: "16" }, "context-per-slot": { type: "string", default: "2048" }, threads: { type: "string" } },
});
const slots = Number(args.slots);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "warn" });
const model = await llama.loadModel({ modelPath: args.gguf });
const context = await model.createContext({
  // NOTE: node-llama-cpp's default (maxThreads, 4 here) oversubscribes a 2-core machine and runs
  // ~200x slower; llama.cpp wants one thread per core, as its server's own default
  contextSize: slots * Number(args["context-per-slot"]), sequences: slots, batchSize: 512, threads: args.threads ? Number(args.threads) : llama.cpuMathCores,
});
const free = Array.from({ length: slots }, () => context.getSequence());
const waiting = [];
const take = () => (free.length > 0 ? Promise.resolve(free.pop()) : new Promise((resolve) => waiting.push(resolve)));
const give = (seq) => (waiting.length > 0 ? waiting.shift()(seq) : free.push(seq));

const template = (messages) =>
  "<|begin_of_text|>" + messages.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content}<|eot_id|>`).join("") + "<|start_header_id|>assistant<|end_header_id|>\n\n";
const EOS = new Set([1, 4]);

const app = new Hono();
app.get("/health", (c) => c.json({ status: "ok" }));
app.post("/v1/chat/completions", async (c) => {
  const body = await c.req.json();
  const tokens = model.tokenize(template(body.messages), true);
  const maxTokens = body.max_tokens ?? 256;
  const id = `chatcmpl-${Date.now()}`;
  const signal = c.req.raw.signal;
  return streamSSE(c, async (sse) => {
    const seq = await take();
    let n = 0;
    try {
      await seq.clearHistory();
      const chunk = (delta, finish) => ({ id, object: "chat.completion.chunk", created: 0, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] });
      await sse.writeSSE({ data: JSON.stringify(chunk({ role: "assistant", content: "" }, null)) });
      let finish = "length";
      for await (const t of seq.evaluate(tokens, { temperature: body.temperature ?? 0, seed: body.seed })) {
        if (signal.aborted) return;
        if (EOS.has(t) && !body.ignore_eos) {
          finish = "stop";
          break;
        }
        n++;
        await sse.writeSSE({ data: JSON.stringify(chunk({ content: model.detokenize([t]) }, null)) });
        if (n >= maxTokens) break;
      }
      await sse.writeSSE({ data: JSON.stringify(chunk({}, finish)) });
      if (body.stream_options?.include_usage) {
        await sse.writeSSE({ data: JSON.stringify({ id, object: "chat.completion.chunk", created: 0, model: body.model, choices: [], usage: { prompt_tokens: tokens.length, completion_tokens: n, total_tokens: tokens.length + n } }) });
      }
      await sse.writeSSE({ data: "[DONE]" });
    } finally {
      give(seq);
    }
  });
});
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: Number(args.port) }, (info) => {
  process.stdout.write(`llama-server: listening on http://127.0.0.1:${info.port} (${slots} slots)\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
