#!/usr/bin/env node
// Throughput and latency of `wgkv serve` against node-llama-cpp's batching
// on the same model, driven over HTTP by the openai client with the same
// load: streaming chat requests with ~1K-token prompts (distinct slices of
// the shipped haystack, so no prefix is shared), answers of a fixed length
// (ignore_eos), N streams kept busy (closed loop), at each concurrency. The
// systems take turns at each concurrency, so a slow spell of a shared
// machine falls on all of them alike.
//
//   npm run build && npm install --prefix scripts/bench      # the baseline, once
//   node scripts/bench/server-bench.mjs [--concurrency 1,4,8,16] [--requests 2] [--max-tokens 64] [--prompt-tokens 1000] [--no-llama] [--wgkv-args="--max-batch-tokens 256"]
//
// Reports per (system, concurrency): aggregate tokens/s (completion tokens
// over wall time), aggregate decode tokens/s (median per-stream decode rate
// x streams), time to first token p50/p90, inter-token p50/p90, and for wgkv
// how long an abort mid-prompt takes to return its pages (polling /metrics).
// Writes bench-out/server-bench.{json,md}.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { brotliDecompressSync } from "node:zlib";
import OpenAI from "openai";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { values: args } = parseArgs({
  options: {
    concurrency: { type: "string", default: "1,4,8,16" }, requests: { type: "string", default: "2" }, "max-tokens": { type: "string", default: "64" },
    "prompt-tokens": { type: "string", default: "1000" }, "no-llama": { type: "boolean", default: false }, threads: { type: "string" },
    gate: { type: "string", default: "models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-0.016n.pt" },
    "wgkv-args": { type: "string", default: "" },
  },
});
const concurrencies = args.concurrency.split(",").map(Number);
const perStream = Number(args.requests), maxTokens = Number(args["max-tokens"]), promptTokens = Number(args["prompt-tokens"]);
const maxC = Math.max(...concurrencies);
const log = (line) => process.stderr.write(line + "\n");

// ---- prompts: distinct ~1K-token slices of the haystack, as chat messages
const { loadModel } = await import(join(ROOT, "dist/index.js"));
const tok = await loadModel(undefined, { kvMemory: "64MiB", maxSeqs: 1, threads: 1 });
const haystack = brotliDecompressSync(readFileSync(join(ROOT, "data/haystack.txt.br"))).toString("utf8").replaceAll("\x1e", "\n\n");
const needed = maxC * (perStream + 1) + 4;
const ids = tok.tokenizer.encode(haystack.slice(0, needed * promptTokens * 5), { addSpecialTokens: false });
const prompts = Array.from({ length: needed }, (_, i) => tok.tokenizer.decode(ids.slice(i * promptTokens, (i + 1) * promptTokens - 20)) + "\n\nWhat is this text about?");
tok.dispose();

// ---- servers
function start(cmd, argv, re) {
  const proc = spawn(process.execPath, [cmd, ...argv], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((res, rej) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = re.exec(out);
      if (m) res({ proc, url: `http://127.0.0.1:${m[1]}` });
    });
    proc.on("exit", (code) => rej(new Error(`${cmd} exited ${code}`)));
  });
}
async function ready(url) {
  for (;;) {
    const r = await fetch(`${url}/health`).catch(() => null);
    if (r?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const threads = args.threads ? ["--threads", args.threads] : [];
const wgkv = await start("dist/cli.js", ["serve", "--port", "0", "--quiet", "--max-seqs", String(maxC), "--max-queue", "256", "--gate", args.gate, ...threads, ...args["wgkv-args"].split(" ").filter((a) => a)], /listening on http:\/\/[^ ]+:(\d+)/);
await ready(wgkv.url);
const systems = [
  { name: "wgkv full attention", url: wgkv.url, model: "wgkv-tiny-chat", extra: { wgkv: { admission: "full" } } },
  { name: "wgkv + write gate", url: wgkv.url, model: "wgkv-tiny-chat", extra: {} },
];
let llama = null;
if (!args["no-llama"]) {
  if (!existsSync(join(ROOT, "scripts/bench/node_modules/node-llama-cpp"))) throw new Error("the baseline is not installed: npm install --prefix scripts/bench (or pass --no-llama)");
  const gguf = join(tmpdir(), "wgkv-tiny-chat.gguf");
  if (!existsSync(gguf)) await new Promise((res, rej) => spawn(process.execPath, ["scripts/bench/to-gguf.mjs", "models/wgkv-tiny-chat", gguf], { cwd: ROOT, stdio: "inherit" }).on("exit", (c) => (c === 0 ? res() : rej(new Error("to-gguf failed")))));
  llama = await start("scripts/bench/llama-server.mjs", ["--gguf", gguf, "--port", "0", "--slots", String(maxC), ...threads], /listening on http:\/\/[^ ]+:(\d+)/);
  await ready(llama.url);
  systems.push({ name: "node-llama-cpp 3.21.1", url: llama.url, model: "wgkv-tiny-chat", extra: {} });
}

// ---- load
let nextPrompt = 0;
async function one(system, client) {
  const content = prompts[nextPrompt++ % prompts.length];
  const t0 = performance.now();
  const times = [];
  let usage = null;
  const stream = await client.chat.completions.create({
    model: system.model, messages: [{ role: "user", content }], max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true }, ...system.extra,
  });
  for await (const c of stream) {
    if (c.choices[0]?.delta?.content) times.push(performance.now());
    if (c.usage) usage = c.usage;
  }
  return { t0, times, tokens: usage?.completion_tokens ?? times.length, promptTokens: usage?.prompt_tokens ?? 0 };
}
const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
async function measure(system, c) {
  const client = new OpenAI({ baseURL: `${system.url}/v1`, apiKey: "none", maxRetries: 0, timeout: 600_000 });
  await one(system, client); // warm-up
  const t0 = performance.now();
  const runs = (await Promise.all(Array.from({ length: c }, async () => {
    const mine = [];
    for (let i = 0; i < perStream; i++) mine.push(await one(system, client));
    return mine;
  }))).flat();
  const wall = (performance.now() - t0) / 1000;
  const ttft = runs.map((r) => (r.times[0] - r.t0) / 1000);
  const itl = runs.flatMap((r) => r.times.slice(1).map((t, i) => (t - r.times[i]) / 1000));
  const decodeRates = runs.map((r) => (r.tokens - 1) / ((r.times.at(-1) - r.times[0]) / 1000));
  const tokens = runs.reduce((s, r) => s + r.tokens, 0);
  return {
    system: system.name, concurrency: c, requests: runs.length, prompt_tokens: Math.round(runs.reduce((s, r) => s + r.promptTokens, 0) / runs.length), max_tokens: maxTokens,
    aggregate_tokens_per_s: tokens / wall, aggregate_decode_tokens_per_s: pct(decodeRates, 50) * c, decode_tokens_per_s_per_stream: pct(decodeRates, 50),
    ttft_p50_s: pct(ttft, 50), ttft_p90_s: pct(ttft, 90), itl_p50_ms: pct(itl, 50) * 1000, itl_p90_ms: pct(itl, 90) * 1000, wall_s: wall,
  };
}

/** wgkv: an abort mid-prompt (a 4K-token prompt) until /metrics shows every page back. */
async function abortLatency(url) {
  const needle = readFileSync(join(ROOT, "examples/needle.txt"), "utf8");
  const used = async () => Number(/^wgkv_kv_pages_used (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text())[1]);
  const controller = new AbortController();
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
  const p = client.chat.completions.create({ model: "wgkv-tiny-chat", messages: [{ role: "user", content: needle }], max_tokens: 4, stream: true }, { signal: controller.signal }).catch(() => null);
  while ((await used()) === 0) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 150)); // well into the prompt
  const before = await used();
  const t0 = performance.now();
  controller.abort();
  while ((await used()) > 0) await new Promise((r) => setTimeout(r, 1));
  await p;
  return { pages_before: before, ms: performance.now() - t0 };
}

const results = [];
const load0 = loadavg()[0];
for (const c of concurrencies) {
  for (const s of systems) {
    log(`[${s.name}] concurrency ${c}...`);
    const r = await measure(s, c);
    log(`  ${r.aggregate_tokens_per_s.toFixed(1)} tok/s, decode ${r.aggregate_decode_tokens_per_s.toFixed(1)} tok/s, TTFT p50 ${r.ttft_p50_s.toFixed(2)} s, ITL p50 ${r.itl_p50_ms.toFixed(1)} ms`);
    results.push(r);
  }
}
const aborts = [];
for (let i = 0; i < 3; i++) aborts.push(await abortLatency(wgkv.url));
wgkv.proc.kill("SIGTERM");
llama?.proc.kill("SIGTERM");

const env = { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadavg_at_start: load0, loadavg_at_end: loadavg()[0], prompt_tokens: promptTokens, max_tokens: maxTokens, requests_per_stream: perStream };
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const md = [
  `machine: ${env.cpus} cores (${env.cpu}), node ${env.node}; load average ${f(env.loadavg_at_start, 2)} at start, ${f(env.loadavg_at_end, 2)} at end`,
  `load: streaming chat, ~${promptTokens}-token prompts, ${maxTokens} tokens per answer (ignore_eos), ${perStream} requests per stream after a warm-up, temperature 0`,
  "",
  "| system | streams | aggregate tok/s | aggregate decode tok/s | decode tok/s per stream | TTFT p50 s | TTFT p90 s | inter-token p50 ms | inter-token p90 ms |",
  "|---|---|---|---|---|---|---|---|---|",
  ...results.map((r) => `| ${r.system} | ${r.concurrency} | ${f(r.aggregate_tokens_per_s)} | ${f(r.aggregate_decode_tokens_per_s)} | ${f(r.decode_tokens_per_s_per_stream)} | ${f(r.ttft_p50_s, 2)} | ${f(r.ttft_p90_s, 2)} | ${f(r.itl_p50_ms)} | ${f(r.itl_p90_ms)} |`),
  "",
  `wgkv abort mid-prompt (4K-token prompt, aborted 150 ms in): pages back in ${aborts.map((a) => `${f(a.ms)} ms (${a.pages_before} pages)`).join(", ")}`,
].join("\n");
mkdirSync(join(ROOT, "bench-out"), { recursive: true });
writeFileSync(join(ROOT, "bench-out/server-bench.json"), JSON.stringify({ env, results, aborts }, null, 2) + "\n");
writeFileSync(join(ROOT, "bench-out/server-bench.md"), md + "\n");
process.stdout.write(md + "\n");
