/**
 * @module cli/bench
 *
 * `wgkv bench`: prefill and decode speed and KV memory at given context
 * lengths. With a KV policy other than full attention, full attention runs on
 * the same kernels in the same process and ratios are reported.
 */
import { Command } from "commander";
import { availableParallelism } from "node:os";
import { runBenches, type BenchCase, type BenchResult } from "../bench/bench.js";
import type { Model } from "../engine/model.js";
import { InvalidInputError } from "../errors.js";
import { HAYSTACK_NAME, resolveTextFile } from "../platform/node/haystack.js";
import { readTextPrefix } from "../platform/node/textFile.js";
import { addKvOptions, addModelOptions, checkKvFlags, kvSettingsFromFlags, loadModelFromFlags, parseIntFlag, type KvFlags, type ModelFlags } from "./common.js";

interface BenchFlags extends ModelFlags, KvFlags {
  context: string;
  decode: string;
  repeat: string;
  text?: string;
  json?: boolean;
}

/** A policy run with its full-attention baseline and the ratios between them. */
interface ComparedResult extends BenchResult {
  full_attention: BenchResult;
  ratio: { kv_resident: number; kv_peak: number; prefill_time: number; prefill_attention_time: number; decode_time: number };
}

export function benchCommand(): Command {
  return addKvOptions(addModelOptions(new Command("bench")))
    .description("measure prefill/decode tokens/s, GFLOP/s and KV memory (median of --repeat runs after a warm-up)")
    .option("--context <n[,n...]>", "prompt length(s) in tokens", "1024")
    .option("--decode <m>", "tokens to decode after the prompt", "64")
    .option("--repeat <r>", "measured runs per context", "3")
    .option("--text <file>", `take the prompt from this text file (.br, .gz, .xz are decompressed), or "${HAYSTACK_NAME}" for the one shipped with wgkv; default: seeded random token ids`)
    .option("--json", "print one JSON object (an array when several contexts are given)")
    .action(async (flags: BenchFlags) => {
      const contexts = flags.context.split(",").map((c) => parseIntFlag("--context", c.trim())!);
      const decode = parseIntFlag("--decode", flags.decode, 0)!;
      const repeat = parseIntFlag("--repeat", flags.repeat)!;
      checkKvFlags(flags);
      const model = await loadModelFromFlags(flags);
      const threads = parseIntFlag("--threads", flags.threads) ?? (flags.backend === "cpu" ? availableParallelism() : 1);
      try {
        for (const context of contexts) {
          if (context + decode > model.config.maxPositions) {
            throw new InvalidInputError(`--context ${context} + --decode ${decode} exceed max_position_embeddings ${model.config.maxPositions} in ${model.name.replace(/\/+$/, "")}/config.json`);
          }
        }
        const kv = await kvSettingsFromFlags(model, flags);
        const promptIds = flags.text ? await promptFromText(model, flags.text, Math.max(...contexts)) : undefined;
        const compare = kv.admission?.name !== "full" || kv.selection?.name !== "all" || kv.eviction?.name !== "none";
        const results: (BenchResult | ComparedResult)[] = [];
        const cases: BenchCase[] = [{ tag: compare ? "policy" : "context", kv }];
        if (compare) cases.push({ tag: "full", kv: { ...kv, admission: undefined, selection: undefined, eviction: undefined } });
        for (const context of contexts) {
          const log = (tag: string, line: string) => process.stderr.write(`[${tag} ${context}] ${line}\n`);
          const [result, full] = await runBenches(model, { context, decode, repeat, promptIds }, cases, threads, log);
          results.push(full ? withBaseline(result, full) : result);
          if (!flags.json) printRow(results[results.length - 1], results.length === 1);
        }
        if (flags.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results) + "\n");
      } finally {
        model.dispose();
      }
    });
}

async function promptFromText(model: Model, file: string, numTokens: number): Promise<number[]> {
  // NOTE: ~3 bytes per token is generous for byte-level BPE on English text and code.
  const text = await readTextPrefix(resolveTextFile(file), numTokens * 8);
  const ids = model.requireTokenizer().encode(text.replaceAll("\x1e", "\n\n"), { addSpecialTokens: true });
  if (ids.length < numTokens) throw new InvalidInputError(`--text ${file}: holds only ${ids.length} tokens, fewer than --context ${numTokens}`);
  return ids;
}

function withBaseline(result: BenchResult, full: BenchResult): ComparedResult {
  const r = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : 0);
  return {
    ...result,
    full_attention: full,
    ratio: {
      kv_resident: r(result.kv_resident_bytes, full.kv_resident_bytes),
      kv_peak: r(result.kv_peak_bytes, full.kv_peak_bytes),
      prefill_time: r(result.prefill_ms, full.prefill_ms),
      prefill_attention_time: r(result.prefill_attention_ms, full.prefill_attention_ms),
      decode_time: r(result.decode_ms_per_token, full.decode_ms_per_token),
    },
  };
}

function printRow(r: BenchResult | ComparedResult, header: boolean): void {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  if (header) {
    process.stdout.write(`backend ${r.backend} (${r.kernels}), model ${r.model}, policy ${r.policy}\n`);
    process.stdout.write("| context | prefill tok/s | prefill GFLOP/s | decode tok/s | decode GFLOP/s | KV resident MiB | KV peak MiB | admitted |");
    process.stdout.write("ratio" in r ? " KV ratio | prefill time ratio | attention time ratio | decode time ratio |\n" : "\n");
    process.stdout.write("|---|---|---|---|---|---|---|---|" + ("ratio" in r ? "---|---|---|---|\n" : "\n"));
  }
  let row = `| ${r.context} | ${r.prefill_tokens_per_s.toFixed(0)} | ${r.prefill_gflops.toFixed(1)} | ${r.decode_tokens_per_s.toFixed(1)} | ${r.decode_gflops.toFixed(1)} | ${mib(r.kv_resident_bytes)} | ${mib(r.kv_peak_bytes)} | ${r.admitted_fraction.toFixed(3)} |`;
  if ("ratio" in r) row += ` ${r.ratio.kv_resident} | ${r.ratio.prefill_time} | ${r.ratio.prefill_attention_time} | ${r.ratio.decode_time} |`;
  process.stdout.write(row + "\n");
}
