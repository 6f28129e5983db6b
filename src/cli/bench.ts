/**
 * @module cli/bench
 *
 * `wgkv bench`: prefill and decode speed at given context lengths.
 */
import { Command } from "commander";
import { availableParallelism } from "node:os";
import { runBench, type BenchResult } from "../bench/bench.js";
import { InvalidInputError } from "../errors.js";
import { addModelOptions, loadModelFromFlags, parseIntFlag, type ModelFlags } from "./common.js";

interface BenchFlags extends ModelFlags {
  context: string;
  decode: string;
  repeat: string;
  json?: boolean;
}

export function benchCommand(): Command {
  return addModelOptions(new Command("bench"))
    .description("measure prefill and decode tokens/s and GFLOP/s (median of --repeat runs after a warm-up)")
    .option("--context <n[,n...]>", "prompt length(s) in tokens", "1024")
    .option("--decode <m>", "tokens to decode after the prompt", "64")
    .option("--repeat <r>", "measured runs per context", "3")
    .option("--json", "print one JSON object (an array when several contexts are given)")
    .action(async (flags: BenchFlags) => {
      const contexts = flags.context.split(",").map((c) => parseIntFlag("--context", c.trim())!);
      const decode = parseIntFlag("--decode", flags.decode, 0)!;
      const repeat = parseIntFlag("--repeat", flags.repeat)!;
      const model = await loadModelFromFlags(flags);
      const threads = parseIntFlag("--threads", flags.threads) ?? (flags.backend === "cpu" ? availableParallelism() : 1);
      try {
        for (const context of contexts) {
          if (context + decode > model.config.maxPositions) {
            throw new InvalidInputError(
              `--context ${context} + --decode ${decode} exceed max_position_embeddings ${model.config.maxPositions} in ${model.name.replace(/\/+$/, "")}/config.json`,
            );
          }
        }
        const results: BenchResult[] = [];
        for (const context of contexts) {
          const result = await runBench(model, { context, decode, repeat }, threads, (line) => process.stderr.write(`[context ${context}] ${line}\n`));
          results.push(result);
          if (!flags.json) printRow(result, results.length === 1);
        }
        if (flags.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results) + "\n");
      } finally {
        model.dispose();
      }
    });
}

function printRow(r: BenchResult, header: boolean): void {
  if (header) {
    process.stdout.write(`backend ${r.backend}, ${r.threads} thread(s), model ${r.model}\n`);
    process.stdout.write("| context | prefill tok/s | prefill GFLOP/s | decode tok/s | decode GFLOP/s |\n|---|---|---|---|---|\n");
  }
  process.stdout.write(`| ${r.context} | ${r.prefill_tokens_per_s.toFixed(0)} | ${r.prefill_gflops.toFixed(1)} | ${r.decode_tokens_per_s.toFixed(1)} | ${r.decode_gflops.toFixed(1)} |\n`);
}
