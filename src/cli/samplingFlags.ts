/**
 * @module cli/samplingFlags
 *
 * The sampling flags `generate` and `chat` share: --temperature, --top-k,
 * --top-p, --seed, declared and checked in one place.
 */
import type { Command } from "commander";
import { parseIntFlag, parseRangeFlag } from "./common.js";

export interface SamplingFlags {
  temperature: string;
  topK?: string;
  topP?: string;
  seed?: string;
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option("--temperature <t>", "sampling temperature; 0 is greedy", "0")
    .option("--top-k <k>", "sample from the k most likely tokens")
    .option("--top-p <p>", "sample from the smallest set with probability >= p")
    .option("--seed <n>", "random seed for sampling");
}

/** The generation options of the flags; a bad value is a one-line error naming the flag. */
export function samplingFromFlags(flags: SamplingFlags): { temperature: number; topK: number | undefined; topP: number | undefined; seed: number | undefined } {
  return {
    temperature: parseRangeFlag("--temperature", flags.temperature, 0, Infinity)!,
    topK: parseIntFlag("--top-k", flags.topK, 0),
    topP: parseRangeFlag("--top-p", flags.topP, 0, 1, true),
    seed: parseIntFlag("--seed", flags.seed, 0),
  };
}
