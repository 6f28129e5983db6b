/**
 * @module server/metrics
 *
 * /metrics in Prometheus' text format through prom-client, on a registry of
 * the server's own (not prom-client's global one, so two servers in one
 * process do not mix). Engine figures (sequences, pages, preemptions,
 * tokens) are read from `engine.stats()` at each scrape; request figures
 * are counted as requests end. Tokens per second is the rate over the last
 * ten seconds of samples taken by `tick()` (the server calls it each second).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EngineStats } from "../engine/engineStats.js";
import type { GenerationResult } from "../engine/generation.js";
import type { RequestQueue } from "./requestQueue.js";

const RATE_WINDOW_MS = 10_000;

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<"endpoint" | "status">;
  readonly #ttft: Histogram;
  readonly #duration: Histogram;
  readonly #admittedHist: Histogram;
  #admitted = 0;
  #entries = 0;
  readonly #samples: { at: number; tokens: number }[] = [];

  constructor(
    readonly engineStats: () => EngineStats | null,
    readonly queue: RequestQueue,
  ) {
    const r = [this.registry];
    this.#requests = new Counter({ name: "wgkv_requests_total", help: "HTTP requests by endpoint and status", labelNames: ["endpoint", "status"], registers: r });
    this.#ttft = new Histogram({ name: "wgkv_time_to_first_token_seconds", help: "time from a request's arrival to its first token", buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32], registers: r });
    this.#duration = new Histogram({ name: "wgkv_request_duration_seconds", help: "time from a request's arrival to its end", buckets: [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128], registers: r });
    this.#admittedHist = new Histogram({ name: "wgkv_request_admitted_fraction", help: "per request: admitted (layer, KV head, token) entries over all", buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1], registers: r });
    const gauge = (name: string, help: string, value: () => number | null) =>
      new Gauge({ name, help, registers: r, collect() { const v = value(); if (v !== null) this.set(v); } });
    const stat = <K extends keyof EngineStats>(key: K, f: (s: EngineStats) => number = (s) => s[key] as number) => () => {
      const s = this.engineStats();
      return s ? f(s) : null;
    };
    gauge("wgkv_queue_length", "requests waiting for a slot in the running batch", () => queue.numWaiting);
    gauge("wgkv_requests_running", "requests admitted to the engine", () => queue.numRunning);
    gauge("wgkv_running_sequences", "sequences the engine runs", stat("numRunning"));
    gauge("wgkv_waiting_sequences", "sequences admitted but waiting inside the engine (pages or budget)", stat("numWaiting"));
    gauge("wgkv_kv_pages_total", "usable KV pages in the pool", stat("numUsablePages"));
    gauge("wgkv_kv_pages_free", "free KV pages", stat("numFreePages"));
    gauge("wgkv_kv_pages_used", "KV pages held by sequences", stat("numFreePages", (s) => s.numUsablePages - s.numFreePages));
    gauge("wgkv_kv_bytes_used", "KV bytes held by sequences", stat("numFreePages", (s) => (s.numUsablePages - s.numFreePages) * s.pageBytes));
    gauge("wgkv_preemptions_total", "sequences preempted (pages ran out) since start", stat("numPreemptions"));
    gauge("wgkv_engine_steps_total", "engine steps since start", stat("numSteps"));
    gauge("wgkv_generated_tokens_total", "tokens generated since start", stat("numTokensGenerated"));
    gauge("wgkv_tokens_per_second", "tokens generated per second over the last 10 s", () => this.tokensPerSecond());
    gauge("wgkv_admitted_fraction", "admitted (layer, KV head, token) entries over all, over every finished request", () => (this.#entries > 0 ? this.#admitted / this.#entries : null));
  }

  /** Counts a request's response (streams count at their start, with status 200). */
  countRequest(endpoint: string, status: number): void {
    this.#requests.inc({ endpoint, status: String(status) });
  }

  /** Records a finished generation: its latency and what its KV policy admitted. */
  observeGeneration(result: GenerationResult, startedAt: number, firstTokenAt: number | null, endedAt: number): void {
    if (firstTokenAt !== null) this.#ttft.observe((firstTokenAt - startedAt) / 1000);
    this.#duration.observe((endedAt - startedAt) / 1000);
    const kv = result.kv;
    const entries = kv.numTokens * kv.admittedByHead.length * (kv.admittedByHead[0]?.length ?? 0);
    if (entries === 0) return;
    const admitted = kv.admittedByHead.flat().reduce((a, b) => a + b, 0);
    this.#admitted += admitted;
    this.#entries += entries;
    this.#admittedHist.observe(admitted / entries);
  }

  /** Samples the engine's token count (once a second). */
  tick(now = Date.now()): void {
    const s = this.engineStats();
    if (!s) return;
    this.#samples.push({ at: now, tokens: s.numTokensGenerated });
    while (this.#samples.length > 2 && now - this.#samples[1].at >= RATE_WINDOW_MS) this.#samples.shift();
  }

  tokensPerSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || last.at === first.at) return 0;
    return ((last.tokens - first.tokens) * 1000) / (last.at - first.at);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
