/**
 * @module cli/bench
 *
 * `wgkv bench`: prefill and decode speed and KV memory at given context
 * lengths and numbers of concurrent sequences. With a KV policy other than
 * full attention, full attention runs on the same kernels in the same process,
 * taking turns with it run by run, and the ratios are reported.
 */
import { Command } from "commander";
import { availableParallelism } from "node:os";
import { runBenches, type BenchCase, type BenchResult } from "../bench/bench.js";
import { formatProfile } from "../backends/webgpu/gpuProfiler.js";
import type { WebGpuBackend } from "../backends/webgpu/webgpuBackend.js";
import type { Model } from "../engine/model.js";
import { InvalidInputError } from "../errors.js";
import { resolveKvPolicy } from "../kvcache/kvPolicy.js";
import { HAYSTACK_NAME, resolveTextFile } from "../platform/node/haystack.js";
import { readTextPrefix } from "../platform/node/textFile.js";
import { createProgress } from "./progress.js";
import { addBatchOptions, addKvOptions, addModelOptions, batchLimitsFromFlags, checkKvFlags, kvPolicyFromFlags, loadModelFromFlags, parseIntFlag, type BatchFlags, type KvFlags, type ModelFlags } from "./common.js";

interface BenchFlags extends ModelFlags, KvFlags, BatchFlags {
  context: string;
  concurrency: string;
  decode: string;
  repeat: string;
  text?: string;
  json?: boolean;
  syntheticFill?: boolean;
  warmup: string;
  decodeWarmup?: string;
  /** false (--no-full): the policy alone, without full attention's runs beside it. */
  full: boolean;
}

/** A result with its aggregate speeds against one sequence's (same context and policy, this run), when concurrency 1 was measured. */
interface ScaledResult extends BenchResult {
  vs_one_sequence?: { aggregate_prefill: number; aggregate_decode: number };
}

/** A policy's result with the ratios to full attention at the same context and concurrency. */
interface ComparedResult extends ScaledResult {
  ratio: { kv_resident: number; kv_peak: number; prefill_time: number; prefill_attention_time: number; decode_time: number; sequences_fitting: number };
}

export function benchCommand(): Command {
  return addBatchOptions(addKvOptions(addModelOptions(new Command("bench"))))
    .description("measure prefill/decode tokens/s, GFLOP/s and KV memory (median of --repeat runs after a warm-up)")
    .option("--context <n[,n...]>", "prompt length(s) in tokens", "1024")
    .option("--concurrency <n[,n...]>", "sequences run at once (their steps are batched)", "1")
    .option("--decode <m>", "tokens to decode after the prompt", "64")
    .option("--repeat <r>", "measured runs per setting", "3")
    .option("--warmup <w>", "unmeasured runs per setting first", "1")
    .option("--text <file>", `take the prompts from this text file (.br, .gz, .xz are decompressed), or "${HAYSTACK_NAME}" for the one shipped with wgkv; default: seeded random token ids`)
    .option("--json", "print a JSON array, one object per (context, concurrency, policy)")
    .option("--synthetic-fill", "fill the KV cache without computing the prompt (the cache's own ops only, at the policy's admission rate): decode figures at long contexts; prefill figures are then the fill's")
    .option("--no-full", "measure the policy alone, without full attention's runs beside it (no ratios): a long prompt's full-attention prefill can take minutes")
    .option("--decode-warmup <ms>", "decode untimed for this long first (default: 2000 with --synthetic-fill, whose light load lets a GPU lower its clocks; else 0)")
    .action(async (flags: BenchFlags) => {
      const contexts = parseList("--context", flags.context);
      const concurrencies = parseList("--concurrency", flags.concurrency);
      const decode = parseIntFlag("--decode", flags.decode, 0)!;
      const repeat = parseIntFlag("--repeat", flags.repeat)!;
      const warmup = parseIntFlag("--warmup", flags.warmup, 0)!;
      const decodeWarmupMs = parseIntFlag("--decode-warmup", flags.decodeWarmup, 0) ?? (flags.syntheticFill ? 2000 : 0);
      checkKvFlags(flags);
      const window = parseIntFlag("--window", flags.window);
      const model = await loadModelFromFlags(flags, { maxSeqs: Math.max(...concurrencies), maxWindow: window && window > 4096 ? window : undefined, ...batchLimitsFromFlags(flags) });
      const threads = parseIntFlag("--threads", flags.threads) ?? (flags.backend === "cpu" ? availableParallelism() : 1);
      try {
        for (const context of contexts) {
          if (context + decode + 1 > model.config.maxPositions) {
            throw new InvalidInputError(`--context ${context} + --decode ${decode} exceed max_position_embeddings ${model.config.maxPositions} in ${model.name.replace(/\/+$/, "")}/config.json`);
          }
        }
        const policy = await kvPolicyFromFlags(model, flags);
        const isFull = policy.admission.kind === "full" && policy.selection.kind === "all" && policy.eviction.kind === "none";
        const compare = !isFull && flags.full;
        const maxTokens = Math.max(...contexts) * Math.max(...concurrencies);
        const promptIds = flags.text ? await promptFromText(model, flags.text, maxTokens) : undefined;
        const cases: BenchCase[] = [{ tag: isFull ? "full" : "policy", policy }];
        if (compare) cases.push({ tag: "full", policy: resolveKvPolicy({ window: policy.window }) });
        const results: (ScaledResult | ComparedResult)[] = [];
        const oneSequence = new Map<string, BenchResult>();
        for (const context of contexts) {
          for (const concurrency of concurrencies) {
            // a terminal gets a bar over the runs (--warmup and --repeat per case); logs and pipes get a line per run; --quiet neither
            const bar = process.stderr.isTTY ? createProgress(`bench ${context} x${concurrency}`, { quiet: flags.quiet, format: (n) => `${n} runs` }) : null;
            const totalRuns = (repeat + warmup) * cases.length;
            let runsDone = 0;
            const log = (tag: string, line: string) => {
              if (flags.quiet) return;
              if (bar) bar.update(++runsDone, totalRuns);
              else process.stderr.write(`[${tag} ${context} x${concurrency}] ${line}\n`);
            };
            const [result, full] = await runBenches(model, { context, decode, repeat, concurrency, promptIds, syntheticFill: flags.syntheticFill, warmup, decodeWarmupMs }, cases, threads, log);
            bar?.end();
            await printProfile(model, `${context} x${concurrency}`);
            const rows = (full ? [withRatios(result, full), full] : [result]).map((r) => againstOneSequence(r, oneSequence));
            if (!flags.json) for (const r of rows) printRow(r, results.length === 0 && r === rows[0]);
            results.push(...rows);
          }
        }
        if (flags.json) process.stdout.write(JSON.stringify(results) + "\n");
      } finally {
        model.dispose();
      }
    });
}

/** With WGKV_PROFILE on a WebGPU backend: the GPU time per kernel of the runs since the last table (stderr). */
async function printProfile(model: Model, title: string): Promise<void> {
  const backend = model.backend as Partial<Pick<WebGpuBackend, "takeProfile">>;
  const profile = await backend.takeProfile?.();
  if (profile) process.stderr.write(`[profile ${title}: every run and warm-up, all cases]\n${formatProfile(profile)}\n`);
}

function parseList(flag: string, text: string): number[] {
  const values = text.split(",").map((c) => parseIntFlag(flag, c.trim())!);
  if (new Set(values).size !== values.length) throw new InvalidInputError(`${flag} "${text}": a value is listed twice`);
  return values;
}

async function promptFromText(model: Model, file: string, numTokens: number): Promise<number[]> {
  // NOTE: ~3 bytes per token is generous for byte-level BPE on English text and code.
  const text = await readTextPrefix(resolveTextFile(file), numTokens * 8);
  const ids = model.requireTokenizer().encode(text.replaceAll("\x1e", "\n\n"), { addSpecialTokens: true });
  if (ids.length < numTokens) throw new InvalidInputError(`--text ${file}: holds only ${ids.length} tokens, fewer than --context × --concurrency = ${numTokens}`);
  return ids;
}

const ratioOf = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : 0);

/** Adds vs_one_sequence when this context and policy ran with concurrency 1 earlier in the run (which it then records). */
function againstOneSequence<R extends BenchResult>(result: R, oneSequence: Map<string, BenchResult>): R & ScaledResult {
  const key = `${result.context} ${result.policy}`;
  if (result.concurrency === 1) oneSequence.set(key, result);
  const one = oneSequence.get(key);
  if (!one) return result;
  return {
    ...result,
    vs_one_sequence: {
      aggregate_prefill: ratioOf(result.aggregate_prefill_tokens_per_s, one.aggregate_prefill_tokens_per_s),
      aggregate_decode: ratioOf(result.aggregate_decode_tokens_per_s, one.aggregate_decode_tokens_per_s),
    },
  };
}

function withRatios(result: BenchResult, full: BenchResult): ComparedResult {
  const r = ratioOf;
  return {
    ...result,
    ratio: {
      kv_resident: r(result.kv_resident_bytes, full.kv_resident_bytes),
      kv_peak: r(result.kv_peak_bytes, full.kv_peak_bytes),
      prefill_time: r(result.prefill_ms, full.prefill_ms),
      prefill_attention_time: r(result.prefill_attention_ms, full.prefill_attention_ms),
      decode_time: r(full.aggregate_decode_tokens_per_s, result.aggregate_decode_tokens_per_s),
      sequences_fitting: r(result.sequences_fitting_kv_memory, full.sequences_fitting_kv_memory),
    },
  };
}

function printRow(r: ScaledResult | ComparedResult, header: boolean): void {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  if (header) {
    process.stdout.write(`backend ${r.backend} (${r.kernels}), model ${r.model}, KV pages ${r.kv_dtype}\n`);
    process.stdout.write("| policy | context | sequences | prefill tok/s | decode tok/s | decode vs 1 seq | prefill GFLOP/s | KV resident MiB (one seq) | fit in KV memory | admitted | KV ratio | prefill time ratio | decode time ratio |\n");
    process.stdout.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  const scale = r.vs_one_sequence ? `${r.vs_one_sequence.aggregate_decode.toFixed(2)}×` : "";
  const ratio = "ratio" in r ? ` ${r.ratio.kv_resident} | ${r.ratio.prefill_time} | ${r.ratio.decode_time} |` : " | | |";
  process.stdout.write(
    `| ${r.policy} | ${r.context} | ${r.concurrency} | ${r.aggregate_prefill_tokens_per_s.toFixed(0)} | ${r.aggregate_decode_tokens_per_s.toFixed(1)} | ${scale} | ${r.prefill_gflops.toFixed(1)} | ` +
      `${mib(r.kv_resident_bytes)} | ${r.sequences_fitting_kv_memory} | ${r.admitted_fraction.toFixed(3)} |${ratio}\n`,
  );
}
