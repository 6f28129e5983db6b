/**
 * @module bench/bench
 *
 * Measures prefill and decode speed and KV memory of a model at a context
 * length, with N sequences at once, under one or more KV settings: the
 * median of several runs after a warm-up. Settings compared take turns run
 * by run, so a slow spell of a shared machine falls on all of them alike and
 * their ratios hold.
 *
 * With N sequences, all N are submitted together (the engine batches their
 * steps). Aggregate prefill is N prompts over the time until the last one has
 * its first token; aggregate decode is the tokens generated after that moment
 * (and after an optional untimed warm-up) over the time until the last of
 * them arrives. Runs end by aborting every request together once each has
 * its tokens, so that no timed step also releases a finished request's pages
 * (millions of them at long context).
 */
import type { Model } from "../engine/model.js";
import { startGeneration } from "../engine/generation.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { describeKvPolicy } from "../kvcache/kvPolicy.js";
import { createRandom } from "../util/random.js";
import { decodeFlops, prefillFlops } from "./flops.js";
import { checkSyntheticFill, skipCompute } from "./syntheticFill.js";

export interface BenchOptions {
  /** Prompt length in tokens. */
  readonly context: number;
  /** Tokens decoded after the prompt's first token. */
  readonly decode: number;
  /** Measured runs (after one warm-up); the median is reported. */
  readonly repeat: number;
  /** Sequences run at once. */
  readonly concurrency: number;
  /** Prompt ids to cut the prompts from (sequence i starts i * context in); seeded random ids when absent. */
  readonly promptIds?: readonly number[];
  /** Fill the cache without computing the prompt (syntheticFill.ts): decode figures only. */
  readonly syntheticFill?: boolean;
  /** Unmeasured rounds first (default 1; 0 where a round is long and kernels were compiled before). */
  readonly warmup?: number;
  /** Called when every prompt's first token arrived (decode begins): diagnostics change the backend there. */
  readonly onDecodeStart?: () => void;
  /**
   * Untimed decode first, at least this long (ms; default 0): a GPU's clock
   * governor, which lowered its clocks during a synthetic fill's light load,
   * takes up to a second or two to raise them again.
   */
  readonly decodeWarmupMs?: number;
}

/** Most tokens a run decodes untimed (decodeWarmupMs), within the model's context. */
const MAX_WARMUP_TOKENS = 4096;

/** One KV setting to measure; `tag` names it in the log. */
export interface BenchCase {
  readonly tag: string;
  readonly policy: KvPolicy;
}

/** One run of a case. */
interface RunTimes {
  readonly prefillMs: number;
  readonly attentionMs: number;
  readonly decodeMs: number;
  readonly numDecodeTokens: number;
  readonly residentBytes: number;
  readonly peakBytes: number;
  readonly fullAttentionBytes: number;
  readonly admittedFraction: number;
}

export interface BenchResult {
  readonly model: string;
  readonly backend: string;
  /** What ran the kernels (build and threads). */
  readonly kernels: string;
  readonly threads: number;
  /** "full" for full attention, else admission/selection/eviction/wW. */
  readonly policy: string;
  readonly kv_dtype: string;
  readonly context: number;
  readonly concurrency: number;
  readonly decode: number;
  readonly aggregate_prefill_tokens_per_s: number;
  readonly aggregate_decode_tokens_per_s: number;
  /** Per sequence: the same figures divided by the concurrency. */
  readonly prefill_tokens_per_s: number;
  readonly decode_tokens_per_s: number;
  readonly prefill_ms: number;
  /** Of which in the attention kernel (all sequences). */
  readonly prefill_attention_ms: number;
  readonly decode_ms_per_token: number;
  readonly prefill_gflops: number;
  readonly decode_gflops: number;
  /** KV bytes of one sequence at its end: resident, peak, and what full attention would hold. */
  readonly kv_resident_bytes: number;
  readonly kv_peak_bytes: number;
  readonly kv_full_attention_bytes: number;
  /** Sequences of this length whose peak KV fits the engine's page pool at once. */
  readonly sequences_fitting_kv_memory: number;
  /** Admitted (layer, KV head, token) entries over all of them. */
  readonly admitted_fraction: number;
  /** The context was filled without computing it (bench/syntheticFill.ts): prefill figures are the fill's, not a prefill's. */
  readonly synthetic_fill: boolean;
}

/** Measures every case: warm-up rounds (default 1), then `repeat` rounds, each running the cases in turn. */
export async function runBenches(model: Model, options: BenchOptions, cases: readonly BenchCase[], threads: number, log: (tag: string, line: string) => void = () => {}): Promise<BenchResult[]> {
  const { context, decode, repeat, concurrency } = options;
  const prompts = Array.from({ length: concurrency }, (_, i) => promptFor(model, options, i));
  // NOTE: the first token, the warm-up, the timed tokens, and one step more (streams end by abort, so no timed step releases a request)
  const room = model.engine.config.maxContext - Math.max(...prompts.map((p) => p.length)) - decode - 2;
  const warmup = { ms: options.decodeWarmupMs ?? 0, maxTokens: options.decodeWarmupMs ? Math.max(0, Math.min(MAX_WARMUP_TOKENS, room)) : 0 };
  const maxNewTokens = decode === 0 ? 1 : decode + 2 + warmup.maxTokens;
  for (const p of prompts) model.validatePrompt(p, maxNewTokens);
  if (options.syntheticFill) for (const c of cases) checkSyntheticFill(c.policy);
  const runs: RunTimes[][] = cases.map(() => []);
  const warmupRounds = options.warmup ?? 1;
  for (let round = 0; round < warmupRounds + repeat; round++) {
    for (const [i, c] of cases.entries()) {
      const r = await measureRun(model, prompts, { decode, maxNewTokens, warmup }, c.policy, options.syntheticFill ?? false, options.onDecodeStart);
      const times = `${options.syntheticFill ? "fill" : "prefill"} ${r.prefillMs.toFixed(0)} ms (attention ${r.attentionMs.toFixed(0)} ms), decode ${r.decodeMs.toFixed(0)} ms for ${r.numDecodeTokens} tokens`;
      if (round < warmupRounds) {
        log(c.tag, `warm-up: ${times}`);
        continue;
      }
      runs[i].push(r);
      log(c.tag, `run ${round - warmupRounds + 1}/${repeat}: ${times}`);
    }
  }
  return runs.map((r, i) => summarize(model, options, threads, cases[i].policy, r));
}

/** How a run decodes: `decode` timed tokens after the warm-up, of at most maxNewTokens generated. */
interface DecodePlan {
  readonly decode: number;
  readonly maxNewTokens: number;
  readonly warmup: { readonly ms: number; readonly maxTokens: number };
}

async function measureRun(model: Model, prompts: readonly (readonly number[])[], plan: DecodePlan, policy: KvPolicy, syntheticFill: boolean, onDecodeStart?: () => void): Promise<RunTimes> {
  const backend = model.backend;
  const { decode, warmup } = plan;
  // NOTE: computing resumes when the last prompt's first token arrives, before any decode step is timed
  const resume = syntheticFill ? skipCompute(backend) : () => {};
  const t0 = performance.now();
  const attention0 = backend.counters.attentionMs;
  let firstTokens = 0;
  let prefillDone = 0;
  let attentionAtPrefill = 0;
  // the timed window: from the first arrival after the warm-up (or from the first token without one) to the last timed arrival
  let timedStart = Infinity;
  let timedEnd = 0;
  let numTimed = 0;
  let ended = false;
  const timedBy = prompts.map(() => 0);
  const streams = prompts.map((ids) => startGeneration(model, ids, { maxNewTokens: plan.maxNewTokens, temperature: 0 }, () => policy));
  const results = await Promise.all(
    streams.map(async (stream, i) => {
      let first = true;
      let warmTokens = 0;
      for await (const chunk of stream) {
        if (chunk.tokenId < 0 || ended) continue;
        const now = performance.now();
        if (first) {
          first = false;
          if (++firstTokens === prompts.length) {
            resume();
            onDecodeStart?.();
            prefillDone = now;
            attentionAtPrefill = backend.counters.attentionMs;
            if (warmup.ms === 0) timedStart = now;
          }
          continue;
        }
        if (timedStart === Infinity) {
          if (now - prefillDone >= warmup.ms || ++warmTokens >= warmup.maxTokens) timedStart = now;
          continue;
        }
        if (now > timedStart) {
          timedBy[i]++;
          numTimed++;
          timedEnd = Math.max(timedEnd, now);
        }
        // NOTE: all streams end together, by abort: a request that finished would release its pages inside another's timed step
        if (timedBy.every((n) => n >= decode)) {
          ended = true;
          for (const s of streams) s.abort();
        }
      }
      return stream.result;
    }),
  );
  const r = results[0].kv;
  const entries = r.numTokens * r.admittedByHead.length * (r.admittedByHead[0]?.length ?? 0);
  const admitted = r.admittedByHead.flat().reduce((a, b) => a + b, 0);
  return {
    prefillMs: prefillDone - t0,
    attentionMs: attentionAtPrefill - attention0,
    decodeMs: numTimed > 0 ? timedEnd - timedStart : 0,
    numDecodeTokens: numTimed,
    residentBytes: r.residentBytes,
    peakBytes: r.peakBytes,
    fullAttentionBytes: r.fullAttentionBytes,
    admittedFraction: entries > 0 ? admitted / entries : 0,
  };
}

/** Medians of a case's runs, and its memory (the same in every run). */
function summarize(model: Model, options: BenchOptions, threads: number, policy: KvPolicy, runs: readonly RunTimes[]): BenchResult {
  const { context, decode, concurrency } = options;
  const prefillMs = median(runs.map((r) => r.prefillMs));
  const decodeMs = median(runs.map((r) => r.decodeMs));
  const decodeTokens = median(runs.map((r) => r.numDecodeTokens));
  const last = runs[runs.length - 1];
  const c = model.config;
  const aggregatePrefill = (concurrency * context) / prefillMs * 1000;
  const aggregateDecode = decodeMs > 0 ? (decodeTokens / decodeMs) * 1000 : 0;
  const engine = model.engine;
  const peakPages = last.peakBytes / engine.config.pageBytes;
  return {
    model: model.name,
    backend: model.backend.name,
    kernels: model.backend.description,
    threads,
    policy: isFull(policy) ? "full" : describeKvPolicy(policy),
    kv_dtype: engine.config.kvDType,
    context,
    concurrency,
    decode,
    aggregate_prefill_tokens_per_s: round(aggregatePrefill),
    aggregate_decode_tokens_per_s: round(aggregateDecode),
    prefill_tokens_per_s: round(aggregatePrefill / concurrency),
    decode_tokens_per_s: round(aggregateDecode / concurrency),
    prefill_ms: round(prefillMs),
    prefill_attention_ms: round(median(runs.map((r) => r.attentionMs))),
    decode_ms_per_token: round(aggregateDecode > 0 ? 1000 / (aggregateDecode / concurrency) : 0),
    prefill_gflops: round((concurrency * prefillFlops(c, context)) / prefillMs / 1e6),
    decode_gflops: round(decodeMs > 0 ? (concurrency * decodeFlops(c, context, decode)) / decodeMs / 1e6 : 0),
    kv_resident_bytes: last.residentBytes,
    kv_peak_bytes: last.peakBytes,
    kv_full_attention_bytes: last.fullAttentionBytes,
    sequences_fitting_kv_memory: peakPages > 0 ? Math.floor(engine.kv.blockPool.numUsablePages / peakPages) : 0,
    admitted_fraction: round(last.admittedFraction, 4),
    synthetic_fill: options.syntheticFill ?? false,
  };
}

function isFull(p: KvPolicy): boolean {
  return p.admission.kind === "full" && p.selection.kind === "all" && p.eviction.kind === "none";
}

/** Sequence i's prompt: a slice of the given ids, or seeded random ids. */
function promptFor(model: Model, options: BenchOptions, i: number): number[] {
  const { context, promptIds } = options;
  if (promptIds) {
    const start = (i * context) % Math.max(1, promptIds.length - context + 1);
    return promptIds.slice(start, start + context);
  }
  const random = createRandom(1234 + i);
  const eos = model.eosTokenIds;
  const ids: number[] = [];
  while (ids.length < context) {
    const id = Math.floor(random() * model.config.vocabSize);
    if (!eos.has(id)) ids.push(id);
  }
  return ids;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
