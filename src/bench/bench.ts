/**
 * @module bench/bench
 *
 * Measures prefill and decode speed and KV memory of a model at a given
 * context length under one or more KV settings: median of several runs after
 * a warm-up, with achieved GFLOP/s (counted as for full attention). Settings
 * compared take turns run by run, so a slow spell of a shared machine falls
 * on all of them alike and their ratios hold.
 */
import { argmax, createRandom } from "../generate/sampler.js";
import type { Model } from "../engine/model.js";
import type { KvSettings } from "../kv/kvSettings.js";
import type { KvReport } from "../kv/sequenceKv.js";
import { decodeFlops, prefillFlops } from "./flops.js";

export interface BenchOptions {
  /** Prompt length in tokens. */
  readonly context: number;
  /** Tokens decoded after the prompt. */
  readonly decode: number;
  /** Measured runs (after one warm-up); the median is reported. */
  readonly repeat: number;
  /** Prompt ids (at least `context` of them); seeded random ids of the vocabulary when absent. */
  readonly promptIds?: readonly number[];
}

/** One KV setting to measure; `tag` names it in the log. */
export interface BenchCase {
  readonly tag: string;
  readonly kv: Partial<KvSettings>;
}

/** One prefill + decode of a case. */
interface RunTimes {
  readonly prefillMs: number;
  readonly attentionMs: number;
  readonly decodeMs: number;
  readonly report: KvReport;
  readonly policy: string;
}

export interface BenchResult {
  readonly model: string;
  readonly backend: string;
  /** What ran the kernels (build and threads). */
  readonly kernels: string;
  readonly threads: number;
  readonly policy: string;
  readonly context: number;
  readonly decode: number;
  readonly prefill_ms: number;
  /** Of which in the attention kernel. */
  readonly prefill_attention_ms: number;
  readonly decode_ms_per_token: number;
  readonly prefill_tokens_per_s: number;
  readonly decode_tokens_per_s: number;
  readonly prefill_gflops: number;
  readonly decode_gflops: number;
  readonly kv_resident_bytes: number;
  readonly kv_peak_bytes: number;
  readonly kv_full_attention_bytes: number;
  /** Admitted (layer, KV head, token) entries over all of them. */
  readonly admitted_fraction: number;
}

/** Measures every case: a warm-up round, then `repeat` rounds, each running the cases in turn. */
export async function runBenches(
  model: Model, options: BenchOptions, cases: readonly BenchCase[], threads: number, log: (tag: string, line: string) => void = () => {},
): Promise<BenchResult[]> {
  const { context, decode, repeat } = options;
  const ids = options.promptIds ? options.promptIds.slice(0, context) : randomIds(model, context);
  model.validatePrompt(ids, decode);
  const runs: RunTimes[][] = cases.map(() => []);
  for (let round = 0; round <= repeat; round++) {
    for (const [i, c] of cases.entries()) {
      const r = await measureRun(model, ids, decode, c.kv);
      const times = `prefill ${r.prefillMs.toFixed(0)} ms (attention ${r.attentionMs.toFixed(0)} ms), decode ${r.decodeMs.toFixed(0)} ms`;
      if (round === 0) {
        log(c.tag, `warm-up: ${times}`);
        continue;
      }
      runs[i].push(r);
      log(c.tag, `run ${round}/${repeat}: ${times}`);
    }
  }
  return runs.map((r) => summarize(model, context, decode, threads, r));
}

async function measureRun(model: Model, ids: readonly number[], decode: number, settings: Partial<KvSettings>): Promise<RunTimes> {
  const kv = model.createSequence(ids.length + decode, settings);
  try {
    const t0 = performance.now();
    let logits = await model.prefill(ids, kv);
    const t1 = performance.now();
    const attentionMs = kv.attentionMs;
    let next = argmax(logits);
    for (let i = 0; i < decode; i++) {
      logits = await model.step(next, kv);
      next = argmax(logits);
    }
    const t2 = performance.now();
    const st = kv.settings;
    const policy = [st.admission.name, st.selection.name, st.eviction.name, `w${st.window}`, st.kvDType].join("/");
    return { prefillMs: t1 - t0, attentionMs, decodeMs: t2 - t1, report: kv.report(), policy };
  } finally {
    kv.release();
  }
}

/** Medians of a case's runs, and its memory (the same in every run). */
function summarize(model: Model, context: number, decode: number, threads: number, runs: readonly RunTimes[]): BenchResult {
  const prefillMs = median(runs.map((r) => r.prefillMs));
  const decodeMs = median(runs.map((r) => r.decodeMs));
  const { report, policy } = runs[runs.length - 1];
  const c = model.config;
  const numEntries = report.numTokens * c.numLayers * c.numKvHeads;
  const numAdmitted = report.admittedByHead.flat().reduce((a, b) => a + b, 0);
  return {
    model: model.name,
    backend: model.backend.name,
    kernels: model.backend.description,
    threads,
    policy,
    context,
    decode,
    prefill_ms: round(prefillMs),
    prefill_attention_ms: round(median(runs.map((r) => r.attentionMs))),
    decode_ms_per_token: round(decode ? decodeMs / decode : 0),
    prefill_tokens_per_s: round((context / prefillMs) * 1000),
    decode_tokens_per_s: round(decode ? (decode / decodeMs) * 1000 : 0),
    prefill_gflops: round(prefillFlops(c, context) / prefillMs / 1e6),
    decode_gflops: round(decode ? decodeFlops(c, context, decode) / decodeMs / 1e6 : 0),
    kv_resident_bytes: report.residentBytes,
    kv_peak_bytes: report.peakBytes,
    kv_full_attention_bytes: report.fullAttentionBytes,
    admitted_fraction: round(numAdmitted / numEntries, 4),
  };
}

function randomIds(model: Model, n: number): number[] {
  const random = createRandom(1234);
  const eos = model.eosTokenIds;
  const ids: number[] = [];
  while (ids.length < n) {
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
