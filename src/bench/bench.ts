/**
 * @module bench/bench
 *
 * Measures prefill and decode speed and KV memory of a model at a given
 * context length under one KV setting: median of several runs after a
 * warm-up, with achieved GFLOP/s (counted as for full attention).
 */
import { argmax, createRandom } from "../generate/sampler.js";
import type { Model } from "../engine/model.js";
import type { KvSettings } from "../kv/kvSettings.js";
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
  readonly kv?: Partial<KvSettings>;
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

export async function runBench(model: Model, options: BenchOptions, threads: number, log: (line: string) => void = () => {}): Promise<BenchResult> {
  const { context, decode, repeat } = options;
  const ids = options.promptIds ? options.promptIds.slice(0, context) : randomIds(model, context);
  model.validatePrompt(ids, decode);
  const prefillTimes: number[] = [];
  const attentionTimes: number[] = [];
  const decodeTimes: number[] = [];
  let report = null;
  let policy = "";
  for (let run = 0; run <= repeat; run++) {
    const kv = model.createSequence(context + decode, options.kv);
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
      report = kv.report();
      const st = kv.settings;
      policy = [st.admission.name, st.selection.name, st.eviction.name, `w${st.window}`, st.kvDType].join("/");
      if (run === 0) {
        log(`warm-up: prefill ${(t1 - t0).toFixed(0)} ms, decode ${(t2 - t1).toFixed(0)} ms`);
        continue;
      }
      prefillTimes.push(t1 - t0);
      attentionTimes.push(attentionMs);
      decodeTimes.push(t2 - t1);
      log(`run ${run}/${repeat}: prefill ${(t1 - t0).toFixed(0)} ms (attention ${attentionMs.toFixed(0)} ms), decode ${(t2 - t1).toFixed(0)} ms`);
    } finally {
      kv.release();
    }
  }
  const prefillMs = median(prefillTimes);
  const decodeMs = median(decodeTimes);
  const c = model.config;
  const numEntries = report!.numTokens * c.numLayers * c.numKvHeads;
  const numAdmitted = report!.admittedByHead.flat().reduce((a, b) => a + b, 0);
  return {
    model: model.name,
    backend: model.backend.name,
    kernels: model.backend.description,
    threads,
    policy,
    context,
    decode,
    prefill_ms: round(prefillMs),
    prefill_attention_ms: round(median(attentionTimes)),
    decode_ms_per_token: round(decode ? decodeMs / decode : 0),
    prefill_tokens_per_s: round((context / prefillMs) * 1000),
    decode_tokens_per_s: round(decode ? (decode / decodeMs) * 1000 : 0),
    prefill_gflops: round(prefillFlops(c, context) / prefillMs / 1e6),
    decode_gflops: round(decode ? decodeFlops(c, context, decode) / decodeMs / 1e6 : 0),
    kv_resident_bytes: report!.residentBytes,
    kv_peak_bytes: report!.peakBytes,
    kv_full_attention_bytes: report!.fullAttentionBytes,
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
